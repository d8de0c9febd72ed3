"""What every command group shares: the console, the common options, and how a command finds its
storage (`--storage`, else `$ECOMLAB_STORAGE`, else SQLite under the runs folder)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from experiments.results.display import TERMINAL_COLUMNS

console = Console()
if not console.is_terminal:  # a pipe or a file: lines as wide as the tables, not rich's 80 columns
    console = Console(width=TERMINAL_COLUMNS)

NoBaseline = Annotated[
    bool, typer.Option("--no-baseline", help="Do not fit or show the task's cheap baseline.")
]
RunsDir = Annotated[
    Path | None, typer.Option("--runs-dir", help="Folder of run records (default $ECOMLAB_RUNS or ./runs).")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="Require this key from clients (Authorization: Bearer KEY); default $ECOMLAB_API_KEY. Needed to "
        "bind an address other than loopback. Never logged.",
    ),
]
Insecure = Annotated[
    bool, typer.Option("--insecure", help="Bind a non-loopback --host without an API key, on purpose.")
]
StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Optuna storage URL (default: runs/optuna.db).")
]


def use_storage(storage: str | None) -> str | None:
    """The storage URL a command uses: --storage, else $ECOMLAB_STORAGE, else None (the default).

    A --storage URL moves into the environment (the workers of a sweep inherit it there, never on
    their command line) and out of sys.argv, which run manifests and W&B's run metadata record, so
    that its password is written nowhere."""
    from experiments.results.storage import STORAGE_ENV, redact

    if storage:
        os.environ[STORAGE_ENV] = storage
        sys.argv = [redact(a) if storage in a else a for a in sys.argv]
    return os.environ.get(STORAGE_ENV) or None


def storage_or_default(storage: str | None, runs_dir: Path | None) -> str:
    from experiments.results import run_record
    from experiments.results.storage import default_storage_url

    return use_storage(storage) or default_storage_url(run_record.runs_root(runs_dir))


def wide(width: int) -> Console:
    """A terminal keeps its own width; a pipe or file gets wide tables uncut."""
    return console if console.is_terminal else Console(width=width)


def results_table(exp_id: str, metrics: dict) -> None:
    table = Table(title=f"Results of {exp_id}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)
