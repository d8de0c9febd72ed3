"""`ecomlab compare`, `report`, `dashboard` and `anomaly`: runs and studies side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from experiments.cli.common import (
    ApiKey,
    Insecure,
    NoBaseline,
    RunsDir,
    StorageOpt,
    console,
    storage_or_default,
    use_storage,
    wide,
)
from experiments.results.display import fitted_table, print_fitted, transposed_tables


def compare(
    targets: Annotated[list[str], typer.Argument(help="Experiment ids and/or study names.")],
    sort: Annotated[str | None, typer.Option("--sort", help="Column to sort by (descending).")] = None,
    ascending: Annotated[bool, typer.Option("--ascending", help="Sort ascending instead.")] = False,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", help="Keep rows where e.g. 'val/f1>0.8'.")
    ] = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Show only the first N rows.")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write every column as CSV.")] = None,
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="Metric columns, globs: 'val/*,test/f1'.")
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Every metric and fact column.")] = False,
    storage: Annotated[
        str | None, typer.Option("--storage", help="Optuna storage URL for study names.")
    ] = None,
    no_baseline: NoBaseline = False,
    runs_dir: RunsDir = None,
) -> None:
    """Runs side by side: the parameters that differ, the objective (or monitored metric) on val and
    test, duration, trainable parameters and size, and the task's baseline as the last row; --metrics
    or --all for more."""
    from experiments.analysis.compare import (
        baseline_rows,
        resolve,
        short_names,
        study_objectives,
        table_rows,
        unsampled_keys,
        write_csv,
    )
    from experiments.results import run_record

    root = run_record.runs_root(runs_dir)
    records, studies = resolve(targets, root, use_storage(storage))
    if not records:
        finished = sum(t.state.name == "COMPLETE" for st in studies for t in st.get_trials(deepcopy=False))
        console.print(
            f"Nothing to compare: the {finished} finished trial(s) have no record here or in the storage (above)."
            if finished
            else "No completed runs to compare."
        )
        return
    patterns = [p.strip() for p in metrics.split(",") if p.strip()] if metrics else None
    columns, rows = table_rows(
        records,
        sort=sort,
        ascending=ascending,
        filters=filter_ or [],
        top=top,
        metrics=patterns,
        objectives=study_objectives(studies) or None,
        show_all=show_all,
        unsampled=unsampled_keys(studies),
    )
    headers = short_names(columns)
    baselines = [] if no_baseline else baseline_rows(records, studies)
    every = rows + baselines
    styles = [None] * len(rows) + ["dim"] * len(baselines)
    title = f"{len(rows)} of {len(records)} run(s)"
    table, left_out = fitted_table(console, title, columns, headers, every, fixed=1, row_styles=styles)
    if left_out and show_all:  # too wide across: one row per column, one column per run
        for table in transposed_tables(console, title, columns, headers, every):
            print_fitted(console, table)
    else:
        print_fitted(console, table)
        if left_out:
            console.print(
                f"Left out (wider than the terminal): {', '.join(headers[c] for c in left_out)}; "
                "`--all` shows every column, one row each; `--csv FILE` writes them.",
                highlight=False,
                soft_wrap=True,
            )
    for row in baselines:
        console.print(f"baseline: {row['name']} on the same split ({row['where']})")
    if csv_path:
        write_csv(csv_path, list(rows[0]) if rows else columns, rows)
        console.print(f"Wrote {csv_path}")


def report(
    targets: Annotated[list[str], typer.Argument(help="Study names and/or experiment ids.")],
    out: Annotated[
        Path, typer.Option("--out", help="HTML file to write (self-contained, opens offline).")
    ] = Path("report.html"),
    png: Annotated[
        Path | None, typer.Option("--png", help="Also write each figure as PNG into this folder.")
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="Optuna storage URL for study names.")
    ] = None,
    no_baseline: NoBaseline = False,
    runs_dir: RunsDir = None,
) -> None:
    """One HTML file: Optuna's study figures (the study's baseline dashed on its optimisation history),
    learning curves of every run, and a run table."""
    from experiments.analysis.report import build
    from experiments.results import run_record

    rep = build(
        targets, run_record.runs_root(runs_dir), out, use_storage(storage), png, baseline=not no_baseline
    )
    console.print(
        f"Wrote {out} ({len(rep.figures)} figure(s)"
        + (f", {len(rep.pngs)} PNG(s) in {png}" if png else "")
        + ")"
    )
    for slug, why in rep.skipped.items():
        console.print(f"  not drawn: {slug}: {why}")


def anomaly(
    path: Annotated[Path, typer.Argument(help="CSV / TSV / JSONL / Parquet file of reviews.")],
    column: Annotated[str, typer.Option("--column", help="Column with the review text.")] = "text",
    model: Annotated[
        str, typer.Option("--model", help="minilm, a from_pretrained id/folder, or a run's experiment id.")
    ] = "minilm",
    k: Annotated[int, typer.Option("--k", min=1, help="Neighbour whose distance measures 'off-topic'.")] = 10,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Score (robust z) from which a review is flagged.")
    ] = 3.5,
    top: Annotated[int, typer.Option("--top", min=0, help="Show the N highest scores.")] = 20,
    out: Annotated[Path | None, typer.Option("--out", help="Write every review's score as CSV.")] = None,
    runs_dir: RunsDir = None,
) -> None:
    """Score every review for being off-topic or a near-duplicate of another (unsupervised)."""
    import csv

    from experiments.analysis.anomaly import embed, load_encoder, read_texts, score
    from experiments.results import run_record

    texts = read_texts(path, column)
    enc = load_encoder(model, run_record.runs_root(runs_dir))
    s = score(embed(enc, texts), k=k)
    kinds = s.kind(threshold)
    order = sorted(range(len(texts)), key=lambda i: -s.score[i])
    table = Table(
        title=f"{sum(1 for x in kinds if x)} of {len(texts)} reviews flagged (score >= {threshold}; "
        f"encoder {enc.source})"
    )
    for col in ("#", "score", "kind", "nearest #", "similarity", "text"):
        table.add_column(col, overflow="fold")
    for i in order[:top]:
        table.add_row(
            str(i),
            f"{s.score[i]:.2f}",
            kinds[i] or "-",
            str(s.nearest[i]),
            f"{s.nearest_similarity[i]:.3f}",
            texts[i][:120],
        )
    wide(170).print(table)
    if out:
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(
                ["index", "score", "kind", "z_far", "z_close", "nearest", "nearest_similarity", "text"]
            )
            for i in range(len(texts)):
                w.writerow(
                    [
                        i,
                        round(float(s.score[i]), 4),
                        kinds[i],
                        round(float(s.z_far[i]), 4),
                        round(float(s.z_close[i]), 4),
                        int(s.nearest[i]),
                        round(float(s.nearest_similarity[i]), 5),
                        texts[i],
                    ]
                )
        console.print(f"Wrote {out}")


def dashboard(
    study_name: Annotated[str | None, typer.Argument(help="Study to open (default: all).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    api_key: ApiKey = None,
    insecure: Insecure = False,
    storage: StorageOpt = None,
    runs_dir: RunsDir = None,
) -> None:
    """optuna-dashboard on the study storage, bound to 127.0.0.1 unless --host says otherwise (then with
    an API key: the browser asks for it as a password); request bodies over 1 MiB are refused."""
    from experiments.analysis.dashboard import name_the_metrics, serve, study_url
    from experiments.core import access
    from experiments.results.storage import load_study
    from experiments.results.storage import storage as open_storage

    key = access.take_api_key(api_key)
    access.check_bind(host, key, insecure, "ecomlab dashboard")
    url = storage_or_default(storage, runs_dir)
    if study_name:
        load_study(study_name, url)  # a clear error for a wrong name
    rdb = open_storage(url)
    if study_name:
        name_the_metrics(rdb, study_name)
    console.print(
        f"optuna-dashboard on {study_url(rdb, study_name, host, port)} (Ctrl-C stops it)", soft_wrap=True
    )
    console.file.flush()  # the link is read before the server's first request
    serve(rdb, host=host, port=port, api_key=key)
