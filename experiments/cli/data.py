"""`ecomlab datasets`, `fetch`, `sync` and `config`: the data sets, assets, W&B uploads and config keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from experiments.cli.common import (
    RunsDir,
    console,
    wide,
)


def datasets() -> None:
    """List the registered data sets with their tasks, size, language, source asset and licence."""
    from datamodules.dataset import info_row
    from experiments.config.registry import DATASETS
    from experiments.core.assets import ASSETS

    table = Table(title="Data sets")
    for col in ("name", "tasks / targets", "size", "language", "source asset", "licence"):
        table.add_column(col)
    for name, cls in DATASETS.items():
        info = info_row(cls)
        found = [ASSETS[a] for a in info["assets"] if a in ASSETS]
        src = ", ".join(f"{a.distribution}=={a.version}" for a in found) or "-"
        table.add_row(
            name,
            info["tasks"],
            info["size"],
            info["language"],
            src,
            ", ".join(a.license for a in found) or "-",
        )
    wide(150).print(table)


def fetch(names: Annotated[list[str] | None, typer.Argument(help="Assets (default: all).")] = None) -> None:
    """Download and verify assets into the cache now (e.g. before going offline)."""
    from experiments.core.assets import ASSETS
    from experiments.core.assets import fetch as do_fetch

    for name in names or list(ASSETS):
        console.print(f"{name}: {do_fetch(name)}")


def sync(
    runs_dir: RunsDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be uploaded.")] = False,
) -> None:
    """Upload offline W&B runs from the run records (needs `wandb login` or WANDB_API_KEY)."""
    from experiments.results import run_record, tracking

    results = tracking.sync(run_record.runs_root(runs_dir), dry_run=dry_run)
    if not results:
        console.print("No offline W&B runs left to upload.")
    for path, code in results:
        console.print(f"{'would upload' if dry_run else 'uploaded' if code == 0 else 'FAILED'}: {path}")
    if any(code for _, code in results):
        raise typer.Exit(1)


def config_help(
    sweep_keys: Annotated[bool, typer.Option("--sweep", help="The keys of a sweep file instead.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="As a Markdown table (what the docs hold).")
    ] = False,
) -> None:
    """Every config key (or, with --sweep, every sweep-file key) with its default and meaning."""
    from experiments.config.schema import field_help
    from experiments.sweep.file import key_reference, markdown_table

    rows = key_reference() if sweep_keys else field_help()
    if markdown:
        print(markdown_table(rows), end="")
        return
    table = Table(title="Sweep file keys" if sweep_keys else "Experiment config keys")
    for col in ("key", "default", "meaning"):
        table.add_column(col)
    for key, default, desc in rows:
        table.add_row(key, default, desc)
    console.print(table)
