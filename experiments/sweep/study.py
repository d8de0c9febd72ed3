"""A sweep's Optuna study: where it is stored, how a monitor creates it and a worker opens it (with a
sampler seed of its own), the attributes other machines read from it, and its baseline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.config.ids import experiment_id
from experiments.results import optuna_private, record_store
from experiments.results.storage import STORAGE_ENV, default_storage_url, storage
from experiments.sweep.claim import ClaimLock
from experiments.sweep.file import Sweep
from experiments.sweep.search import pruner, sampler

SLOTS_ATTR = "ecomlab:sampler_slots"


def sweep_dir(runs_root: Path, name: str) -> Path:
    """Where a sweep's worker logs and study-level W&B run go."""
    return runs_root / "sweeps" / name


def storage_url(sw: Sweep, runs_root: Path) -> str:
    """`$ECOMLAB_STORAGE` (what `--storage` sets), else the file's `storage`, else SQLite under the
    runs folder. Workers get it through the environment, never on a command line."""
    return os.environ.get(STORAGE_ENV) or sw.spec.storage or default_storage_url(runs_root)


def artifacts_location(sw: Sweep) -> str | None:
    """`$ECOMLAB_ARTIFACTS` (what `--artifacts` sets), else the file's `artifacts.store`."""
    return os.environ.get(record_store.ARTIFACTS_ENV) or sw.spec.artifacts.store


def open_rdb(sw: Sweep, runs_root: Path) -> Any:
    """The study's RDB storage with the file's heartbeats and retries."""
    f = sw.spec.faults
    return storage(storage_url(sw, runs_root), f.heartbeat_interval, f.grace_period, f.max_retries)


def max_reports(sw: Sweep) -> int:
    """The most intermediate values a trial reports: one per epoch, or one per fold under
    cross-validation."""
    base = sw.base_experiment
    return base.eval.folds if base.eval.folds > 1 else base.trainer.max_epochs


def open_study(sw: Sweep, runs_root: Path, sampling: bool) -> tuple[Any, int, Any]:
    """(the study, its sampler seed, its RDB storage), created on first use.

    A sampling worker's seed is `sampler.seed + slot`, where the slot is a counter the storage hands
    out under the claim lock: workers on any machine, and every resume, draw different random
    sequences by construction (not from a local worker index). The monitor uses the file's seed.
    """
    import optuna

    rdb = open_rdb(sw, runs_root)
    probe = optuna.create_study(
        study_name=sw.name, storage=rdb, directions=sw.directions, load_if_exists=True
    )
    seed = sw.spec.sampler.seed
    if sampling:
        claim = ClaimLock(rdb, sw.name)
        claim.acquire()
        try:
            sid = optuna_private.study_id(probe)
            slot = rdb.get_study_system_attrs(sid).get(SLOTS_ATTR, 0)
            rdb.set_study_system_attr(sid, SLOTS_ATTR, slot + 1)
        finally:
            claim.release()
        seed += slot
    study = optuna.load_study(
        study_name=sw.name, storage=rdb, sampler=sampler(sw, seed), pruner=pruner(sw, max_reports(sw))
    )
    _describe(study, sw)
    return study, seed, rdb


def _describe(study: Any, sw: Sweep) -> None:
    """What other machines and commands read from the study: its metrics, sweep file, base
    experiment and where its records are."""
    location = artifacts_location(sw)
    if location and study.user_attrs.get(record_store.STUDY_ATTR) != location:
        study.set_user_attr(record_store.STUDY_ATTR, location)  # how other machines find the records
    if "metrics" not in study.user_attrs:
        study.set_user_attr("metrics", [m.model_dump(exclude_none=True) for m in sw.objectives])
        study.set_user_attr("sweep_file", str(sw.source))
        study.set_user_attr("base_experiment_id", experiment_id(sw.base_experiment))


def base_experiment_id(sw: Sweep) -> str:
    return experiment_id(sw.base_experiment)


def study_baseline(study: Any, sw: Sweep, console: Console) -> dict[str, Any] | None:
    """Fit the task's baseline on the base config's split (once; cached) and keep it on the study,
    where `study show`, `report`, `compare` and the W&B study run read it. A baseline that cannot be
    fitted is reported and the sweep goes on."""
    from experiments.run import baseline

    try:
        result = baseline.compute(sw.base_experiment, console)
    except Exception as exc:  # noqa: BLE001 - the baseline is a reference, never a reason to stop a sweep
        console.print(f"[yellow]The baseline was not fitted:[/] {type(exc).__name__}: {exc}")
        return None
    if result is not None:
        searched = sorted(p.path for p in sw.searched if p.path.startswith("data."))
        if searched:
            result["note"] = (
                f"fitted on the base config's split; the sweep also searches {', '.join(searched)}"
            )
        study.set_user_attr("baseline", {k: v for k, v in result.items() if k != "cache_hit"})
    return result
