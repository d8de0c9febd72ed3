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


def backbones(
    terms: Annotated[
        str | None, typer.Option("--terms", help="Show where a backbone's terms of use are.")
    ] = None,
    accept: Annotated[
        str | None, typer.Option("--accept", help="Accept a backbone's terms of use on this machine.")
    ] = None,
) -> None:
    """The pretrained backbones by name: family, parameters, languages, licence, size and source."""
    from experiments.core.assets import ASSETS
    from lightning_modules import weights

    for name in filter(None, (terms, accept)):
        if name not in weights.CATALOGUE or weights.CATALOGUE[name].terms is None:
            raise typer.BadParameter(
                f"{name!r} has no terms to accept (open licence or not in the catalogue)"
            )
    if terms:
        console.print(f"{terms}: {weights.CATALOGUE[terms].licence}; the terms: {weights.terms_path(terms)}")
        return
    if accept:
        console.print(f"Accepted the terms of {accept} on this machine ({weights.accept(accept)}).")
        return
    table = Table(title="Backbones (model.backbone); any from_pretrained id or folder works too")
    for col in ("name", "family", "kind", "parameters", "languages", "licence", "MB", "source", "weights"):
        table.add_column(col, overflow="fold")
    for p in weights.CATALOGUE.values():
        asset = ASSETS[p.assets[-1]]
        source = f"{asset.distribution}=={asset.version}" + (
            f" (+{len(p.assets) - 1} more)" if len(p.assets) > 1 else ""
        )
        licence = p.licence + ("" if weights.accepted(p.name) else " (not accepted: --terms)")
        table.add_row(
            p.name,
            p.family,
            p.kind + (", instruct" if p.instruct else ""),
            p.parameters,
            p.languages,
            licence,
            str(p.size_mb),
            source,
            p.quantisation,
        )
    table.add_row(
        "tiny",
        "BERT, random (2 layers by default)",
        "encoder",
        "~1M",
        "any (its vocabulary is built from the train split)",
        "-",
        "0",
        "built from the data",
        "none",
    )
    wide(170).print(table)
