"""`ecomlab` command line. Thin wrappers around `train`, `reproduce` and the run records.

Heavy libraries (torch, transformers, lightning) are imported inside the commands so that
`ecomlab --help` answers at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from experiments.core.errors import EcomlabError

app = typer.Typer(
    help="Fine-tune, sweep and reproduce e-commerce language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()

NoBaseline = Annotated[
    bool, typer.Option("--no-baseline", help="Do not fit or show the task's cheap baseline.")
]
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
    no_baseline: NoBaseline = False,
) -> None:  # fmt: skip
    """Run one experiment: validate, fit with early stopping, test the best checkpoint, write the record,
    and show it beside the task's cheap baseline on the same split."""
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
    if not no_baseline:
        _run_baseline(cfg, metrics)
    console.print(f"Record: {root / exp_id}   Reproduce: ecomlab reproduce {exp_id}")


def _run_baseline(cfg: Any, metrics: dict) -> None:
    """The run's monitored metric and its test twin beside the task's baseline (a failure to fit it
    is reported; the run is already recorded)."""
    from experiments import baseline

    try:
        base = baseline.compute(cfg, console)
    except Exception as exc:  # noqa: BLE001 - a reference only
        console.print(f"[yellow]The baseline was not fitted:[/] {type(exc).__name__}: {exc}")
        return
    goal = "maximize" if cfg.trainer.mode == "max" else "minimize"
    monitor = cfg.trainer.monitor
    for name in (monitor, monitor.replace("val/", "test/", 1)):
        line = baseline.versus(metrics.get(name), base, name, goal)
        if line:
            console.print(f"this run: {line}")


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
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage to fetch the record from "
                       "(its study's artifact store) when it is not here; default $ECOMLAB_STORAGE.")] = None,
    runs_dir: RunsDir = None,
) -> None:  # fmt: skip
    """Re-run a recorded experiment and compare metrics and weights with the original."""
    from experiments import record_store, run_record
    from experiments.reproduce import reproduce as do_reproduce

    run_record.check_id(exp_id)
    root = run_record.runs_root(runs_dir)
    url = _use_storage(storage)
    if (
        url
        and not (root / exp_id / "config.yaml").is_file()
        and record_store.fetch_experiment(exp_id, root, url)
    ):
        console.print(f"Fetched record {exp_id} from the study's artifact store into {root / exp_id}")
    result = do_reproduce(exp_id, runs_dir, console=console)
    raise typer.Exit(0 if result.identical or result.equivalent else 1)


@app.command()
def runs(runs_dir: RunsDir = None) -> None:
    """List run records: id, dataset, task, key parameters, metrics, date."""
    from experiments import run_record
    from experiments.registry import TASKS

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
    for col in ("task", "target", "backbone", "lr", "lora r", "prune", "val (monitor)", "test (same metric)",
                "status", "started"):  # fmt: skip
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
            rec.exp_id, data.get("dataset", "?"), task, str(data.get("target", data.get("label_column", "-"))),
            str(c.get("model", {}).get("backbone")) if spec is None or spec.text_encoder else "-",
            fmt(c.get("optim", {}).get("lr")), fmt(c.get("peft", {}).get("r")), fmt(c.get("prune", {}).get("ratio")),
            f"{monitor} {fmt(m.get(monitor))}", f"{test_metric} {fmt(m.get(test_metric))}",
            rec.manifest.get("status", "?"), str(rec.manifest.get("started", "?"))[:16],
        )  # fmt: skip
    _wide(170).print(table)


@app.command()
def compare(
    targets: Annotated[list[str], typer.Argument(help="Experiment ids and/or study names.")],
    sort: Annotated[str | None, typer.Option("--sort", help="Column to sort by (descending).")] = None,
    ascending: Annotated[bool, typer.Option("--ascending", help="Sort ascending instead.")] = False,
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="Keep rows where e.g. 'val/f1>0.8'.")] = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Show only the first N rows.")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write every column as CSV.")] = None,
    metrics: Annotated[str | None, typer.Option("--metrics", help="Metric columns, globs: 'val/*,test/f1'.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Every metric and fact column.")] = False,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage URL for study names.")] = None,
    no_baseline: NoBaseline = False,
    runs_dir: RunsDir = None,
) -> None:  # fmt: skip
    """Runs side by side: the parameters that differ, the objective (or monitored metric) on val and
    test, duration, trainable parameters and size, and the task's baseline as the last row; --metrics
    or --all for more."""
    from experiments import run_record
    from experiments.compare import (
        baseline_rows,
        fmt_value,
        resolve,
        short_names,
        study_objectives,
        table_rows,
        write_csv,
    )

    root = run_record.runs_root(runs_dir)
    records, studies = resolve(targets, root, _use_storage(storage))
    if not records:
        console.print("No completed runs to compare.")
        return
    patterns = [p.strip() for p in metrics.split(",") if p.strip()] if metrics else None
    columns, rows = table_rows(records, sort=sort, ascending=ascending, filters=filter_ or [], top=top,
                               metrics=patterns, objectives=study_objectives(studies) or None,
                               show_all=show_all)  # fmt: skip
    headers = short_names(columns)
    table = Table(title=f"{len(rows)} of {len(records)} run(s)", padding=(0, 1), collapse_padding=True)
    for col in columns:
        table.add_column(headers[col], overflow="fold", no_wrap=col == "experiment_id")
    for row in rows:
        table.add_row(*(fmt_value(row.get(c)) for c in columns))
    baselines = [] if no_baseline else baseline_rows(records, studies)
    for row in baselines:
        table.add_row(*(fmt_value(row.get(c)) for c in columns), style="dim")
    _wide(max(160, 14 * len(columns)) if show_all else 120).print(table)
    for row in baselines:
        console.print(f"baseline: {row['name']} on the same split ({row['where']})")
    if csv_path:
        write_csv(csv_path, list(rows[0]) if rows else columns, rows)
        console.print(f"Wrote {csv_path}")


@app.command()
def report(
    targets: Annotated[list[str], typer.Argument(help="Study names and/or experiment ids.")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write (self-contained, opens offline).")] = Path(
        "report.html"),
    png: Annotated[Path | None, typer.Option("--png", help="Also write each figure as PNG into this folder.")] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage URL for study names.")] = None,
    no_baseline: NoBaseline = False,
    runs_dir: RunsDir = None,
) -> None:  # fmt: skip
    """One HTML file: Optuna's study figures (the study's baseline dashed on its optimisation history),
    learning curves of every run, and a run table."""
    from experiments import run_record
    from experiments.report import build

    rep = build(
        targets, run_record.runs_root(runs_dir), out, _use_storage(storage), png, baseline=not no_baseline
    )
    console.print(f"Wrote {out} ({len(rep.figures)} figure(s)" + (f", {len(rep.pngs)} PNG(s) in {png}" if png else "")
                  + ")")  # fmt: skip
    for slug, why in rep.skipped.items():
        console.print(f"  not drawn: {slug}: {why}")


@app.command()
def anomaly(
    path: Annotated[Path, typer.Argument(help="CSV / TSV / JSONL / Parquet file of reviews.")],
    column: Annotated[str, typer.Option("--column", help="Column with the review text.")] = "text",
    model: Annotated[str, typer.Option("--model", help="minilm, a from_pretrained id/folder, or a run's experiment id.")] = "minilm",
    k: Annotated[int, typer.Option("--k", min=1, help="Neighbour whose distance measures 'off-topic'.")] = 10,
    threshold: Annotated[float, typer.Option("--threshold", help="Score (robust z) from which a review is flagged.")] = 3.5,
    top: Annotated[int, typer.Option("--top", min=0, help="Show the N highest scores.")] = 20,
    out: Annotated[Path | None, typer.Option("--out", help="Write every review's score as CSV.")] = None,
    runs_dir: RunsDir = None,
) -> None:  # fmt: skip
    """Score every review for being off-topic or a near-duplicate of another (unsupervised)."""
    import csv

    from experiments import run_record
    from experiments.anomaly import embed, load_encoder, read_texts, score

    texts = read_texts(path, column)
    enc = load_encoder(model, run_record.runs_root(runs_dir))
    s = score(embed(enc, texts), k=k)
    kinds = s.kind(threshold)
    order = sorted(range(len(texts)), key=lambda i: -s.score[i])
    table = Table(title=f"{sum(1 for x in kinds if x)} of {len(texts)} reviews flagged (score >= {threshold}; "
                        f"encoder {enc.source})")  # fmt: skip
    for col in ("#", "score", "kind", "nearest #", "similarity", "text"):
        table.add_column(col, overflow="fold")
    for i in order[:top]:
        table.add_row(str(i), f"{s.score[i]:.2f}", kinds[i] or "-", str(s.nearest[i]), f"{s.nearest_similarity[i]:.3f}",
                      texts[i][:120])  # fmt: skip
    _wide(170).print(table)
    if out:
        with open(out, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(
                ["index", "score", "kind", "z_far", "z_close", "nearest", "nearest_similarity", "text"]
            )
            for i in range(len(texts)):
                w.writerow([i, round(float(s.score[i]), 4), kinds[i], round(float(s.z_far[i]), 4),
                            round(float(s.z_close[i]), 4), int(s.nearest[i]), round(float(s.nearest_similarity[i]), 5),
                            texts[i]])  # fmt: skip
        console.print(f"Wrote {out}")


@app.command()
def datasets() -> None:
    """List the registered data sets with their tasks, size, language, source asset and licence."""
    from datamodules.dataset import info_row
    from experiments.core.assets import ASSETS
    from experiments.registry import DATASETS

    table = Table(title="Data sets")
    for col in ("name", "tasks / targets", "size", "language", "source asset", "licence"):
        table.add_column(col)
    for name, cls in DATASETS.items():
        info = info_row(cls)
        found = [ASSETS[a] for a in info["assets"] if a in ASSETS]
        src = ", ".join(f"{a.distribution}=={a.version}" for a in found) or "-"
        table.add_row(name, info["tasks"], info["size"], info["language"], src,
                      ", ".join(a.license for a in found) or "-")  # fmt: skip
    _wide(150).print(table)


@app.command()
def fetch(names: Annotated[list[str] | None, typer.Argument(help="Assets (default: all).")] = None) -> None:
    """Download and verify assets into the cache now (e.g. before going offline)."""
    from experiments.core.assets import ASSETS
    from experiments.core.assets import fetch as do_fetch

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


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep YAML (see sweeps/README.md).")],
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes sharing the study.")] = 1,
    devices_per_trial: Annotated[int | None, typer.Option("--devices-per-trial", min=1,
                                 help="GPUs per trial (default: the base config's trainer.devices).")] = None,
    n_trials: Annotated[int | None, typer.Option("--n-trials", min=1, help="Override budget.n_trials.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate; print the search space; run nothing.")] = False,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage URL, overriding the file's "
                       "(default $ECOMLAB_STORAGE); its password is never written anywhere.")] = None,
    artifacts: Annotated[str | None, typer.Option("--artifacts", help="Artifact store for the trials' records: "
                         "a shared folder or s3://bucket (default $ECOMLAB_ARTIFACTS, then the file's).")] = None,
    no_baseline: NoBaseline = False,
    runs_dir: RunsDir = None,
) -> None:  # fmt: skip
    """Run (or resume) the Optuna study of a sweep file; every trial is a normal run with its own record."""
    import os

    from experiments import record_store, run_record
    from experiments.sweep_config import load_sweep

    _use_storage(storage)
    if artifacts:
        os.environ[record_store.ARTIFACTS_ENV] = artifacts  # the workers inherit it
    sw = load_sweep(sweep_file)
    root = run_record.runs_root(runs_dir)
    from experiments.sweep import base_experiment_id, run_sweep, storage_url

    if dry_run:
        table = Table(title=f"Sweep {sw.name}: search space")
        table.add_column("parameter")
        table.add_column("space")
        for p in sw.params:
            table.add_row(p.path, p.describe())
        console.print(table)
        goals = ", ".join(f"{m.name} ({m.goal})" for m in sw.objectives)
        console.print(f"objective: {goals}; sampler {sw.sampler} (seed {sw.sampler_seed}); pruner {sw.pruner_type}; "
                      f"budget {n_trials or sw.budget.n_trials} trials"
                      + (f", {sw.budget.timeout:g} s" if sw.budget.timeout else "")
                      + f"; storage {storage_url(sw, root).split('://')[0]}")  # fmt: skip
        console.print(f"base experiment id: {base_experiment_id(sw)}")
        for note in sw.notes:
            console.print(f"note: {note}")
        return
    for note in sw.notes:
        console.print(f"note: {note}")
    run_sweep(sw, root, workers=workers, devices_per_trial=devices_per_trial, n_trials=n_trials,
              console=console, baseline=not no_baseline)  # fmt: skip


study_app = typer.Typer(help="Inspect Optuna studies: list, show, best.", no_args_is_help=True)
app.add_typer(study_app, name="study")
StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Optuna storage URL (default: runs/optuna.db).")
]


def _use_storage(storage: str | None) -> str | None:
    """The storage URL a command uses: --storage, else $ECOMLAB_STORAGE, else None (the default).

    A --storage URL moves into the environment (the workers of a sweep inherit it there, never on
    their command line) and out of sys.argv, which run manifests and W&B's run metadata record, so
    that its password is written nowhere."""
    import os

    from experiments.study import STORAGE_ENV, _redact

    if storage:
        os.environ[STORAGE_ENV] = storage
        sys.argv = [_redact(a) if storage in a else a for a in sys.argv]
    return os.environ.get(STORAGE_ENV) or None


def _storage(storage: str | None, runs_dir: Path | None) -> str:
    from experiments import run_record
    from experiments.study import default_storage_url

    return _use_storage(storage) or default_storage_url(run_record.runs_root(runs_dir))


@study_app.command("list")
def study_list(storage: StorageOpt = None, runs_dir: RunsDir = None) -> None:
    """Every study in the storage with its trial counts and best value."""
    import optuna

    from experiments.study import storage as open_storage

    summaries = optuna.get_all_study_summaries(
        open_storage(_storage(storage, runs_dir)), include_best_trial=True
    )
    if not summaries:
        console.print("No studies yet. Start one with `ecomlab sweep sweeps/quickstart.yaml`.")
        return
    table = Table(title="Studies")
    for col in ("study", "trials", "best value", "started"):
        table.add_column(col)
    for s in summaries:
        best = (
            f"{s.best_trial.value:.4f}"
            if s.best_trial is not None and s.best_trial.value is not None
            else "-"
        )
        table.add_row(
            s.study_name, str(s.n_trials), best, str(s.datetime_start)[:19] if s.datetime_start else "-"
        )
    console.print(table)


@study_app.command("show")
def study_show(name: str, storage: StorageOpt = None, no_baseline: NoBaseline = False,
               runs_dir: RunsDir = None) -> None:  # fmt: skip
    """Trials table (parameters, metrics, duration, experiment id), the best trial or Pareto front, and
    the best trial against the task's baseline."""
    from experiments.study import load_study
    from experiments.sweep import show_study

    show_study(load_study(name, _storage(storage, runs_dir)), console, baseline=not no_baseline)


@study_app.command("best")
def study_best(
    name: str,
    export: Annotated[
        Path | None, typer.Option("--export", help="Write the best trial's full config here.")
    ] = None,
    storage: StorageOpt = None,
    runs_dir: RunsDir = None,
) -> None:
    """The best trial; with --export, its resolved config, ready for `ecomlab run` (same experiment id)."""
    from experiments import run_record
    from experiments.study import load_study
    from experiments.sweep import export_best, show_study

    st = load_study(name, _storage(storage, runs_dir))
    if export is None:
        show_study(st, console)
        return
    from experiments import record_store

    record_store.fetch_study(st, run_record.runs_root(runs_dir))  # its record may be on another machine
    exp_id = export_best(st, run_record.runs_root(runs_dir), export)
    console.print(f"Wrote {export} (experiment {exp_id}); run it with `ecomlab run {export}`.")


@app.command()
def export(
    target: Annotated[str, typer.Argument(help="Experiment id, or a study name (its best trial).")],
    out: Annotated[Path | None, typer.Option("--out", help="Folder to write (default: exports/<id>).")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Add a dynamically quantised int8 copy (torch; ONNX too with --onnx).")] = False,
    onnx: Annotated[bool, typer.Option("--onnx", help="Add model.onnx, checked against onnxruntime.")] = False,
    trial: Annotated[int | None, typer.Option("--trial", help="With a study: this trial instead of the best.")] = None,
    pareto: Annotated[bool, typer.Option("--pareto", help="With a multi-objective study: every Pareto trial, one subfolder each.")] = False,
    storage: StorageOpt = None,
    runs_dir: RunsDir = None,
) -> None:  # fmt: skip
    """Write a finished run as a folder that loads without ecomlab (Hugging Face for text tasks)."""
    from experiments import record_store, run_record
    from experiments.export import export_run, study_trials
    from experiments.run_record import ID_PATTERN

    root = run_record.runs_root(runs_dir)
    if ID_PATTERN.match(target):
        url = _use_storage(storage)
        if url and not (root / target / "config.yaml").is_file():
            record_store.fetch_experiment(target, root, url)
        export_run(target, out or Path("exports") / target, root, int8=int8, onnx=onnx, console=console)
        return
    from experiments.study import load_study

    st = load_study(target, _storage(storage, runs_dir))
    chosen = study_trials(st, trial, pareto)
    record_store.fetch_study(st, root)  # the records may be on another machine
    base = out or Path("exports") / target
    for t in chosen:
        exp_id = t.user_attrs.get("experiment_id")
        folder = base / f"trial-{t.number}" if pareto else base
        console.print(f"Study {target}: trial {t.number} (values {t.values}), experiment {exp_id}")
        export_run(exp_id, folder, root, int8=int8, onnx=onnx, console=console)


@app.command()
def serve(
    target: Annotated[str, typer.Argument(help="An exported folder, or an experiment id (exported to exports/<id> first).")],
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    runtime: Annotated[str, typer.Option(help="torch (fp32), int8, onnx or onnx-int8.")] = "torch",
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Rows per forward pass.")] = 32,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", min=0, help="How long the first request of a batch waits for others.")] = 5.0,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", min=0.001, help="Larger request bodies get 413.")] = 10.0,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Torch threads for the forward pass (default: torch's, one per core).")] = None,
    runs_dir: RunsDir = None,
) -> None:  # fmt: skip
    """Serve a model over HTTP: POST /predict, GET /health, GET /metadata, with dynamic batching."""
    from experiments import run_record
    from experiments.export import INFO_FILE, export_run, load_model
    from experiments.run_record import ID_PATTERN
    from experiments.serve import serve as run_server

    folder = Path(target)
    if not (folder / INFO_FILE).is_file() and ID_PATTERN.match(target):
        folder = Path("exports") / target
        if not (folder / INFO_FILE).is_file() or (runtime != "torch" and not _has_runtime(folder, runtime)):
            export_run(target, folder, run_record.runs_root(runs_dir), int8="int8" in runtime,
                       onnx=runtime.startswith("onnx"), console=console)  # fmt: skip
    if threads:
        import torch

        torch.set_num_threads(threads)
    predictor = load_model(folder, runtime)
    console.print(f"Serving {predictor.info['experiment_id']} ({predictor.info['task']}, {runtime}) on "
                  f"http://{host}:{port}: POST /predict, GET /health, GET /metadata")  # fmt: skip
    run_server(predictor, host, port, max_batch=max_batch, max_wait_ms=max_wait_ms, max_body_mb=max_body_mb)


def _has_runtime(folder: Path, runtime: str) -> bool:
    from experiments.export import _runtime_file

    f = _runtime_file(runtime)
    return f is None or (folder / f).is_file()


@app.command()
def dashboard(
    study_name: Annotated[str | None, typer.Argument(help="Study to open (default: all).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    storage: StorageOpt = None,
    runs_dir: RunsDir = None,
) -> None:
    """optuna-dashboard on the study storage, bound to 127.0.0.1 unless --host says otherwise; request
    bodies over 1 MiB are refused."""
    from experiments.dashboard import serve
    from experiments.study import load_study
    from experiments.study import storage as open_storage

    url = _storage(storage, runs_dir)
    if study_name:
        load_study(study_name, url)  # a clear error for a wrong name
    where = f"http://{host}:{port}/dashboard" + (f"/studies/{study_name}" if study_name else "")
    console.print(f"optuna-dashboard on {where} (Ctrl-C stops it)")
    serve(open_storage(url), host=host, port=port)


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
    from experiments.core.process import exit_now

    code: object = 0
    try:
        app()
    except SystemExit as exc:  # how Typer ends every command
        code = exc.code
    except EcomlabError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        code = 2
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        code = 130
    exit_now(code)


if __name__ == "__main__":
    main()
