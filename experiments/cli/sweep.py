"""`ecomlab sweep` and `ecomlab study list | show | best`: Optuna studies from sweep files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from experiments.cli.common import (
    NoBaseline,
    RunsDir,
    StorageOpt,
    console,
    storage_or_default,
    use_storage,
)


def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep YAML (see sweeps/README.md).")],
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes sharing the study.")] = 1,
    devices_per_trial: Annotated[
        int | None,
        typer.Option(
            "--devices-per-trial", min=1, help="GPUs per trial (default: the base config's trainer.devices)."
        ),
    ] = None,
    n_trials: Annotated[
        int | None, typer.Option("--n-trials", min=1, help="Override budget.n_trials.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate; print the search space; run nothing.")
    ] = False,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna storage URL, overriding the file's "
            "(default $ECOMLAB_STORAGE); its password is never written anywhere.",
        ),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            help="Artifact store for the trials' records: "
            "a shared folder or s3://bucket (default $ECOMLAB_ARTIFACTS, then the file's).",
        ),
    ] = None,
    new_study: Annotated[
        bool,
        typer.Option(
            "--new-study",
            help="The file's search changed: start a new study, "
            "its name suffixed with the new search's fingerprint.",
        ),
    ] = False,
    allow_changed: Annotated[
        bool,
        typer.Option(
            "--allow-changed",
            help="The file's search changed: go on with the study and record the change in it.",
        ),
    ] = False,
    test_every_trial: Annotated[
        bool,
        typer.Option(
            "--test-every-trial",
            help="Test every trial's model (by default trials report val only and the best are tested once, at the end).",
        ),
    ] = False,
    no_baseline: NoBaseline = False,
    runs_dir: RunsDir = None,
) -> None:
    """Run (or resume) the Optuna study of a sweep file; every trial is a normal run with its own record."""
    import os

    from experiments.results import record_store, run_record
    from experiments.sweep.file import load_sweep, settings
    from experiments.sweep.monitor import run_sweep
    from experiments.sweep.study import base_experiment_id, storage_url

    use_storage(storage)
    if artifacts:
        os.environ[record_store.ARTIFACTS_ENV] = artifacts  # the workers inherit it
    sw = load_sweep(sweep_file)
    sw.test_every_trial = test_every_trial
    root = run_record.runs_root(runs_dir)
    for note in sw.notes:
        console.print(f"note: {note}")
    if new_study:
        from experiments.sweep.study import digest, fingerprint

        sw.spec.name = f"{sw.name}-{digest(fingerprint(sw))}"
        console.print(f"new study: {sw.name}")
    if not dry_run:
        run_sweep(
            sw,
            root,
            workers=workers,
            devices_per_trial=devices_per_trial,
            n_trials=n_trials,
            console=console,
            baseline=not no_baseline,
            allow_changed=allow_changed,
        )
        return
    space = Table(title=f"Sweep {sw.name}: search space")
    space.add_column("parameter")
    space.add_column("space")
    for p in sw.every_param:  # a conditional choice's sub-space under it, "when" it is taken
        space.add_row(("  " if p.when else "") + p.path, p.describe())
    console.print(space)
    table = Table(title="settings (defaults filled in, W&B keys resolved)")
    table.add_column("key")
    table.add_column("value")
    for key, value in settings(sw):
        table.add_row(key, str(value))
    table.add_row("storage (used)", storage_url(sw, root).split("://")[0])
    if n_trials:
        table.add_row("--n-trials", str(n_trials))
    console.print(table)
    console.print(f"base experiment id: {base_experiment_id(sw)}")


def study_list(storage: StorageOpt = None, runs_dir: RunsDir = None) -> None:
    """Every study in the storage with its trial counts and best value."""
    import optuna

    from experiments.results.storage import storage as open_storage

    summaries = optuna.get_all_study_summaries(
        open_storage(storage_or_default(storage, runs_dir)), include_best_trial=True
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


def study_show(
    name: str, storage: StorageOpt = None, no_baseline: NoBaseline = False, runs_dir: RunsDir = None
) -> None:
    """Trials table (parameters, metrics, duration, experiment id), the best trial or Pareto front, and
    the best trial against the task's baseline."""
    from experiments.results.storage import load_study
    from experiments.sweep.summary import show_study

    show_study(load_study(name, storage_or_default(storage, runs_dir)), console, baseline=not no_baseline)


def study_best(
    name: str,
    export: Annotated[
        Path | None, typer.Option("--export", help="Write the best trial's full config here.")
    ] = None,
    storage: StorageOpt = None,
    runs_dir: RunsDir = None,
) -> None:
    """The best trial; with --export, its resolved config, ready for `ecomlab run` (same experiment id)."""
    from experiments.results import run_record
    from experiments.results.storage import load_study
    from experiments.sweep.summary import export_best, show_study

    st = load_study(name, storage_or_default(storage, runs_dir))
    if export is None:
        show_study(st, console)
        return
    from experiments.results import record_store

    record_store.fetch_study(st, run_record.runs_root(runs_dir))  # its record may be on another machine
    exp_id = export_best(st, run_record.runs_root(runs_dir), export)
    console.print(f"Wrote {export} (experiment {exp_id}); run it with `ecomlab run {export}`.")


def study_recommend(
    name: str,
    within: Annotated[
        float, typer.Option("--within", min=0, help="How far below the best objective a trial may be.")
    ] = 0.01,
    by: Annotated[
        str, typer.Option("--by", help="The cost to minimise among them: any metric of the run records.")
    ] = "model/latency_ms_b32",
    storage: StorageOpt = None,
    runs_dir: RunsDir = None,
) -> None:
    """The best trial, and the cheapest trial (by --by; default the served latency at batch 32) whose
    objective is within --within of the best's, with the command that exports it."""
    from experiments.results.storage import load_study
    from experiments.results.trials import recommendation_lines

    study = load_study(name, storage_or_default(storage, runs_dir))
    for line in recommendation_lines(study, within, by):
        console.print(line, highlight=False, soft_wrap=True)
