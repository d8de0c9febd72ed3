"""`ecomlab run`, `reproduce` and `runs`: one experiment, its re-run, and every record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from experiments.cli.common import (
    NoBaseline,
    RunsDir,
    console,
    results_table,
    use_storage,
    wide,
)


def run(
    config: Annotated[
        Path | None, typer.Argument(help="Experiment YAML (default: the bundled quickstart).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key: --set optim.lr=1e-4")
    ] = None,
    runs_dir: RunsDir = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-run even if this experiment id completed.")
    ] = False,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config and id; no run.")
    ] = False,
    no_baseline: NoBaseline = False,
) -> None:
    """Run one experiment: validate, fit with early stopping, test the best checkpoint, write the record,
    and show it beside the task's cheap baseline on the same split."""
    from experiments.config import experiment_id, load_config, resolved
    from experiments.results import run_record

    cfg = load_config(config, set_ or [])
    exp_id = experiment_id(cfg)
    if print_config:
        import yaml

        console.print(f"# experiment id: {exp_id}")
        console.print(yaml.safe_dump(resolved(cfg), sort_keys=False, allow_unicode=True), end="")
        return
    root = run_record.runs_root(runs_dir)
    done = root / exp_id / "metrics.json"
    if done.is_file() and not force:
        console.print(
            f"Experiment {exp_id} already completed: {root / exp_id}. "
            f"Use --force to run it again or `ecomlab reproduce {exp_id}` to check it."
        )
        results_table(exp_id, run_record.read(root, exp_id).metrics or {})
        return
    from experiments.run.train import train

    console.print(f"Experiment [bold]{exp_id}[/] -> {root / exp_id}")
    metrics = train(cfg, root, console=console)
    results_table(exp_id, metrics)
    if not no_baseline:
        _run_baseline(cfg, metrics)
    console.print(f"Record: {root / exp_id}   Reproduce: ecomlab reproduce {exp_id}")


def _run_baseline(cfg: Any, metrics: dict) -> None:
    """The run's monitored metric and its test twin beside the task's baseline (a failure to fit it
    is reported; the run is already recorded)."""
    from experiments.run import baseline

    goal = "maximize" if cfg.trainer.mode == "max" else "minimize"
    monitor = cfg.trainer.monitor
    for what, compute in (("baseline", baseline.compute), ("zero-shot baseline", baseline.zero_shot)):
        try:
            base = compute(cfg, console)
        except Exception as exc:  # noqa: BLE001 - a reference only
            console.print(f"[yellow]The {what} was not fitted:[/] {type(exc).__name__}: {exc}")
            continue
        for name in (monitor, monitor.replace("val/", "test/", 1)):
            line = baseline.versus(metrics.get(name), base, name, goal)
            if line:
                console.print(f"this run: {line}")


def reproduce(
    exp_id: Annotated[str, typer.Argument(help="Experiment id (see `ecomlab runs`).")],
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna storage to fetch the record from "
            "(its study's artifact store) when it is not here; default $ECOMLAB_STORAGE.",
        ),
    ] = None,
    runs_dir: RunsDir = None,
) -> None:
    """Re-run a recorded experiment and compare metrics and weights with the original."""
    from experiments.results import record_store, run_record
    from experiments.run.reproduce import reproduce as do_reproduce

    run_record.check_id(exp_id)
    root = run_record.runs_root(runs_dir)
    url = use_storage(storage)
    if (
        url
        and not (root / exp_id / "config.yaml").is_file()
        and record_store.fetch_experiment(exp_id, root, url)
    ):
        console.print(f"Fetched record {exp_id} from the study's artifact store into {root / exp_id}")
    result = do_reproduce(exp_id, runs_dir, console=console)
    raise typer.Exit(0 if result.identical or result.equivalent else 1)


def runs(runs_dir: RunsDir = None) -> None:
    """List run records: id, dataset, task, key parameters, metrics, date."""
    from experiments.config.registry import TASKS
    from experiments.results import run_record

    root = run_record.runs_root(runs_dir)
    damaged: list[str] = []
    records = run_record.list_records(root, damaged)
    for why in damaged:
        Console(stderr=True).print(f"[yellow]skipped:[/] {why}", highlight=False)
    if not records:
        console.print(f"No run records under {root}/. Start one with `ecomlab run`.")
        return
    table = Table(title=f"Runs in {root}/")
    table.add_column("id", no_wrap=True, min_width=12)
    table.add_column("dataset", overflow="fold")
    for col in (
        "task",
        "target",
        "backbone",
        "lr",
        "lora r",
        "prune",
        "val (monitor)",
        "test (same metric)",
        "status",
        "started",
    ):
        table.add_column(col)
    for rec in records:
        c, m = rec.config, rec.metrics or {}
        data = c.get("data", {})
        monitor = c.get("trainer", {}).get("monitor", "val/f1")

        def fmt(v: object) -> str:
            return f"{v:.4f}" if isinstance(v, float) else "-" if v is None else str(v)

        task = c.get("task", "text_classification")
        spec = TASKS.get(task)
        test_metric = "test/" + monitor.split("/", 1)[-1]
        table.add_row(
            rec.exp_id,
            data.get("dataset", "?"),
            task,
            str(data.get("target", data.get("label_column", "-"))),
            str(c.get("model", {}).get("backbone")) if spec is None or spec.text_encoder else "-",
            fmt(c.get("optim", {}).get("lr")),
            fmt(c.get("peft", {}).get("r")),
            fmt(c.get("prune", {}).get("ratio")),
            f"{monitor} {fmt(m.get(monitor))}",
            f"{test_metric} {fmt(m.get(test_metric))}",
            rec.manifest.get("status", "?"),
            str(rec.manifest.get("started", "?"))[:16],
        )
    wide(170).print(table)
