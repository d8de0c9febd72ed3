"""`ecomlab run`, `reproduce` and `runs`: one experiment, its re-run, and every record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from experiments.cli.common import (
    NoBaseline,
    RunsDir,
    console,
    results_table,
    use_storage,
)
from experiments.results.display import fitted_table, fmt_value, print_fitted


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
    """List run records, newest first: id, start, status, the monitored metric on val and test, the
    duration, and the settings that differ between them (what every run shares is said once)."""
    from experiments.results import run_record

    root = run_record.runs_root(runs_dir)
    damaged: list[str] = []
    records = run_record.list_records(root, damaged)
    for why in damaged:
        Console(stderr=True).print(f"[yellow]skipped:[/] {why}", highlight=False)
    if not records:
        console.print(f"No run records under {root}/. Start one with `ecomlab run`.")
        return
    columns, headers, rows, shared = runs_rows(records)
    table, left_out = fitted_table(console, f"Runs in {root}/", columns, headers, rows, fixed=6)
    print_fitted(console, table)
    if shared:
        console.print("Every run: " + ", ".join(f"{k} {v}" for k, v in shared.items()), highlight=False)
    if left_out:
        console.print(
            f"Also differing (wider than the terminal): {', '.join(left_out)}; `ecomlab compare ID ...` shows them.",
            highlight=False,
            soft_wrap=True,
        )


def runs_rows(records: list[Any]) -> tuple[list[str], dict[str, str], list[dict[str, Any]], dict[str, Any]]:
    """(columns, headers, rows, what every record shares) of `ecomlab runs`, newest first."""
    from experiments.analysis.compare import differing, flatten, short_names

    records = sorted(records, key=lambda r: str(r.manifest.get("started", "")), reverse=True)
    flat = [flatten(r.config) for r in records]
    monitors = {f.get("trainer.monitor", "val/f1") for f in flat}
    one_monitor = next(iter(monitors)) if len(monitors) == 1 else None
    facts = ["task", "data.dataset", "data.target", "model.backbone"]
    shared = {k.split(".")[-1]: flat[0].get(k) for k in facts if len({repr(f.get(k)) for f in flat}) == 1}
    shared = {k: v for k, v in shared.items() if v is not None}
    params = [k for k in differing(records) if not k.startswith(("seed", "trainer.monitor"))]
    params = [k for k in facts if k in params] + [k for k in params if k not in facts]
    rows = []
    for rec, f in zip(records, flat):
        monitor = f.get("trainer.monitor", "val/f1")
        test = "test/" + monitor.split("/", 1)[-1]
        m = rec.metrics or {}
        val_cell = m.get(monitor) if one_monitor else f"{monitor} {fmt_value(m.get(monitor))}"
        test_cell = m.get(test) if one_monitor else f"{test} {fmt_value(m.get(test))}"
        rows.append(
            {
                "id": rec.exp_id,
                "started": str(rec.manifest.get("started", "?"))[5:16].replace("T", " "),
                "status": rec.manifest.get("status", "?"),
                "val": val_cell,
                "test": test_cell,
                "time/total_s": m.get("time/total_s"),
                **{k: f.get(k) for k in params},
            }
        )
    monitor_name = one_monitor or "val (monitor)"
    headers = {
        "id": "id",
        "started": "started",
        "status": "status",
        "val": monitor_name,
        "test": "test/" + monitor_name.split("/", 1)[-1] if one_monitor else "test",
        "time/total_s": "time",
        **short_names(params),
    }
    return ["id", "started", "status", "val", "test", "time/total_s", *params], headers, rows, shared
