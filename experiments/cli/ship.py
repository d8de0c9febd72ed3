"""`ecomlab export` and `serve`: a finished run out of the workbench, as a folder or a REST service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiments.cli.common import (
    ApiKey,
    Insecure,
    RunsDir,
    StorageOpt,
    console,
    storage_or_default,
    use_storage,
)


def export(
    target: Annotated[str, typer.Argument(help="Experiment id, or a study name (its best trial).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder to write (default: exports/<id>).")
    ] = None,
    int8: Annotated[
        bool,
        typer.Option("--int8", help="Add a dynamically quantised int8 copy (torch; ONNX too with --onnx)."),
    ] = False,
    onnx: Annotated[
        bool, typer.Option("--onnx", help="Add model.onnx, checked against onnxruntime.")
    ] = False,
    trial: Annotated[
        int | None, typer.Option("--trial", help="With a study: this trial instead of the best.")
    ] = None,
    pareto: Annotated[
        bool,
        typer.Option(
            "--pareto", help="With a multi-objective study: every Pareto trial, one subfolder each."
        ),
    ] = False,
    storage: StorageOpt = None,
    runs_dir: RunsDir = None,
) -> None:
    """Write a finished run as a folder that loads without ecomlab (Hugging Face for text tasks)."""
    from experiments.results import record_store, run_record
    from experiments.results.run_record import ID_PATTERN
    from experiments.ship.export import export_run, study_trials

    root = run_record.runs_root(runs_dir)
    if ID_PATTERN.match(target):
        url = use_storage(storage)
        if url and not (root / target / "config.yaml").is_file():
            record_store.fetch_experiment(target, root, url)
        export_run(target, out or Path("exports") / target, root, int8=int8, onnx=onnx, console=console)
        return
    from experiments.results.storage import load_study

    st = load_study(target, storage_or_default(storage, runs_dir))
    chosen = study_trials(st, trial, pareto)
    record_store.fetch_study(st, root)  # the records may be on another machine
    base = out or Path("exports") / target
    for t in chosen:
        exp_id = t.user_attrs.get("experiment_id")
        folder = base / f"trial-{t.number}" if pareto else base
        console.print(f"Study {target}: trial {t.number} (values {t.values}), experiment {exp_id}")
        export_run(exp_id, folder, root, int8=int8, onnx=onnx, console=console)


def serve(
    target: Annotated[
        str, typer.Argument(help="An exported folder, or an experiment id (exported to exports/<id> first).")
    ],
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    runtime: Annotated[str, typer.Option(help="torch (fp32), int8, onnx or onnx-int8.")] = "torch",
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Rows per forward pass.")] = 32,
    max_wait_ms: Annotated[
        float,
        typer.Option("--max-wait-ms", min=0, help="How long the first request of a batch waits for others."),
    ] = 5.0,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Larger request bodies get 413.")
    ] = 10.0,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads", min=1, help="Torch threads for the forward pass (default: torch's, one per core)."
        ),
    ] = None,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=1, help="Requests waiting for the model; more get 503 at once.")
    ] = 256,
    max_connections: Annotated[
        int, typer.Option("--max-connections", min=1, help="Open connections; more get 503.")
    ] = 4096,
    request_timeout: Annotated[
        float,
        typer.Option("--request-timeout", min=0.1, help="Seconds for a request's headers, and for its body."),
    ] = 10.0,
    api_key: ApiKey = None,
    insecure: Insecure = False,
    runs_dir: RunsDir = None,
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /metadata, with dynamic batching and
    bounded queues, connections and time per request."""
    from experiments.core import access
    from experiments.results import run_record
    from experiments.results.run_record import ID_PATTERN
    from experiments.ship.export import export_run
    from experiments.ship.predictor import INFO_FILE, load_model
    from experiments.ship.serve import Limits
    from experiments.ship.serve import serve as run_server

    key = access.take_api_key(api_key)
    access.check_bind(host, key, insecure, "ecomlab serve")
    folder = Path(target)
    if not (folder / INFO_FILE).is_file() and ID_PATTERN.match(target):
        folder = Path("exports") / target
        if not (folder / INFO_FILE).is_file() or (runtime != "torch" and not _has_runtime(folder, runtime)):
            export_run(
                target,
                folder,
                run_record.runs_root(runs_dir),
                int8="int8" in runtime,
                onnx=runtime.startswith("onnx"),
                console=console,
            )
    if threads:
        import torch

        torch.set_num_threads(threads)
    predictor = load_model(folder, runtime)
    console.print(
        f"Serving {predictor.info['experiment_id']} ({predictor.info['task']}, {runtime}) on "
        f"http://{host}:{port}: POST /predict, GET /health, GET /metadata"
    )
    limits = Limits(max_batch, max_wait_ms, max_body_mb, max_queue, max_connections, request_timeout, key)
    run_server(predictor, host, port, limits)


def _has_runtime(folder: Path, runtime: str) -> bool:
    from experiments.ship.predictor import runtime_file

    f = runtime_file(runtime)
    return f is None or (folder / f).is_file()
