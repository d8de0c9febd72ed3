"""`ecomlab` command line. Thin wrappers around `train`, `reproduce` and the run records.

Heavy libraries (torch, transformers, lightning) are imported inside the commands so that
`ecomlab --help` answers at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from experiments.errors import EcomlabError

app = typer.Typer(
    help="Fine-tune, sweep and reproduce e-commerce language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()

RunsDir = Annotated[
    Path | None, typer.Option("--runs-dir", help="Folder of run records (default $ECOMLAB_RUNS or ./runs).")
]


@app.command()
def run(
    config: Annotated[Path | None, typer.Argument(help="Experiment YAML (default: the bundled quickstart).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key: --set optim.lr=1e-4")] = None,
    runs_dir: RunsDir = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run even if this experiment id completed.")] = False,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the resolved config and id; no run.")] = False,
) -> None:  # fmt: skip
    """Run one experiment: validate, fit with early stopping, test the best checkpoint, write the record."""
    from experiments import run_record
    from experiments.config import experiment_id, load_config, resolved

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
        console.print(f"Experiment {exp_id} already completed: {root / exp_id}. "
                      f"Use --force to run it again or `ecomlab reproduce {exp_id}` to check it.")  # fmt: skip
        _results_table(exp_id, run_record.read(root, exp_id).metrics or {})
        return
    from experiments.train import train

    console.print(f"Experiment [bold]{exp_id}[/] -> {root / exp_id}")
    metrics = train(cfg, root, console=console)
    _results_table(exp_id, metrics)
    console.print(f"Record: {root / exp_id}   Reproduce: ecomlab reproduce {exp_id}")


def _wide(width: int) -> Console:
    """A terminal keeps its own width; a pipe or file gets wide tables uncut."""
    return console if console.is_terminal else Console(width=width)


def _results_table(exp_id: str, metrics: dict) -> None:
    table = Table(title=f"Results of {exp_id}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)


@app.command()
def reproduce(
    exp_id: Annotated[str, typer.Argument(help="Experiment id (see `ecomlab runs`).")],
    runs_dir: RunsDir = None,
) -> None:
    """Re-run a recorded experiment and compare metrics and weights with the original."""
    from experiments import run_record
    from experiments.reproduce import reproduce as do_reproduce

    run_record.check_id(exp_id)
    result = do_reproduce(exp_id, runs_dir, console=console)
    raise typer.Exit(0 if result.identical else 1)


@app.command()
def runs(runs_dir: RunsDir = None) -> None:
    """List run records: id, dataset, task, key parameters, metrics, date."""
    from experiments import run_record

    root = run_record.runs_root(runs_dir)
    records = run_record.list_records(root)
    if not records:
        console.print(f"No run records under {root}/. Start one with `ecomlab run`.")
        return
    table = Table(title=f"Runs in {root}/")
    table.add_column("id", no_wrap=True, min_width=12)
    table.add_column("dataset", overflow="fold")
    for col in ("target", "backbone", "lr", "lora r", "prune", "val best", "test/acc",
                "test/f1", "status", "started"):  # fmt: skip
        table.add_column(col)
    for rec in records:
        c, m = rec.config, rec.metrics or {}
        data = c.get("data", {})
        monitor = c.get("trainer", {}).get("monitor", "val/f1")

        def fmt(v: object) -> str:
            return f"{v:.4f}" if isinstance(v, float) else "-" if v is None else str(v)

        table.add_row(
            rec.exp_id, data.get("dataset", "?"), str(data.get("target", data.get("label_column", "-"))),
            str(c.get("model", {}).get("backbone")), fmt(c.get("optim", {}).get("lr")),
            fmt(c.get("peft", {}).get("r")), fmt(c.get("prune", {}).get("ratio")),
            f"{monitor} {fmt(m.get(monitor))}", fmt(m.get("test/acc")), fmt(m.get("test/f1")),
            rec.manifest.get("status", "?"), str(rec.manifest.get("started", "?"))[:16],
        )  # fmt: skip
    _wide(170).print(table)


@app.command()
def datasets() -> None:
    """List the registered data sets with their tasks, size, language, source asset and licence."""
    from experiments.assets import ASSETS
    from experiments.registry import DATASET_INFO

    table = Table(title="Data sets")
    for col in ("name", "tasks / targets", "size", "language", "source asset", "licence"):
        table.add_column(col)
    for name, info in DATASET_INFO.items():
        asset = ASSETS.get(info["asset"] or "")
        src = f"{asset.distribution}=={asset.version}" if asset else "-"
        table.add_row(name, info["tasks"], info["size"], info["language"], src, asset.license if asset else "-")
    _wide(150).print(table)


@app.command()
def fetch(names: Annotated[list[str] | None, typer.Argument(help="Assets (default: all).")] = None) -> None:
    """Download and verify assets into the cache now (e.g. before going offline)."""
    from experiments.assets import ASSETS
    from experiments.assets import fetch as do_fetch

    for name in names or list(ASSETS):
        console.print(f"{name}: {do_fetch(name)}")


@app.command()
def sync(
    runs_dir: RunsDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be uploaded.")] = False,
) -> None:
    """Upload offline W&B runs from the run records (needs `wandb login` or WANDB_API_KEY)."""
    from experiments import run_record, tracking

    results = tracking.sync(run_record.runs_root(runs_dir), dry_run=dry_run)
    if not results:
        console.print("No offline W&B runs left to upload.")
    for path, code in results:
        console.print(f"{'would upload' if dry_run else 'uploaded' if code == 0 else 'FAILED'}: {path}")
    if any(code for _, code in results):
        raise typer.Exit(1)


@app.command("config")
def config_help() -> None:
    """Every config key with its default and meaning."""
    from experiments.config import field_help

    table = Table(title="Experiment config keys")
    for col in ("key", "default", "meaning"):
        table.add_column(col)
    for key, default, desc in field_help():
        table.add_row(key, default, desc)
    console.print(table)


def main() -> None:
    try:
        app()
    except EcomlabError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
