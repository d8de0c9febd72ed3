"""A sweep's Optuna study: where it is stored, how a monitor creates it and a worker opens it (with a
sampler seed of its own), the attributes other machines read from it, and its baseline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.config.ids import experiment_id
from experiments.core.errors import EcomlabError
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


def max_reports(sw: Sweep) -> int | str:
    """The most intermediate values a trial reports: one per validation (one an epoch, or
    1/`val_check_interval` an epoch), or one per fold under cross-validation; `auto` (Optuna's
    Hyperband then reads it off the first finished trial) when validations come every N batches."""
    base = sw.base_experiment
    if base.eval.folds > 1:
        return base.eval.folds
    vci = base.trainer.val_check_interval
    if vci is None:
        return base.trainer.max_epochs
    return base.trainer.max_epochs * max(1, round(1 / vci)) if isinstance(vci, float) else "auto"


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
    if (
        study.metric_names is None
    ):  # every plot of optuna-dashboard and the report says val/f1, not "Objective 0"
        study.set_metric_names([m.name for m in sw.objectives])
    if "metrics" not in study.user_attrs:
        study.set_user_attr("metrics", [m.model_dump(exclude_none=True) for m in sw.objectives])
        study.set_user_attr("sweep_file", str(sw.source))
        study.set_user_attr("base_experiment_id", experiment_id(sw.base_experiment))
    if "report_unit" not in study.user_attrs:  # what a step of the intermediate values is
        study.set_user_attr("report_unit", report_unit(sw))


def report_unit(sw: Sweep) -> str:
    """What one intermediate value of a trial stands for: an epoch, a validation (several an epoch
    with `trainer.val_check_interval`), or a fold under cross-validation."""
    base = sw.base_experiment
    if base.eval.folds > 1:
        return "fold"
    return "epoch" if base.trainer.val_check_interval in (None, 1.0) else "validation"


def base_experiment_id(sw: Sweep) -> str:
    return experiment_id(sw.base_experiment)


FINGERPRINT_ATTR = "fingerprint"


def fingerprint(sw: Sweep) -> dict[str, Any]:
    """What makes a study one search: its search space, its objectives and its base experiment."""
    out = {
        "space": {p.optuna_name: p.describe() for top in sw.searched for p in top.flat() if p.searched},
        "objectives": [f"{m.name} ({m.goal})" for m in sw.objectives],
        "base_experiment_id": base_experiment_id(sw),
    }
    if sw.spec.constraints:  # absent from studies made before constraints: their fingerprint stays
        out["constraints"] = list(sw.spec.constraints)
    if sw.spec.pruner.metric is not None:  # the pruner compares reports: one study, one meaning of them
        out["reported"] = sw.reported
    return out


def digest(parts: dict[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8]


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, one phrase each."""
    out = []
    before, after = old.get("space", {}), new.get("space", {})
    for path in sorted(before.keys() | after.keys()):
        if before.get(path) != after.get(path):
            was, now = before.get(path, "not searched"), after.get(path, "not searched")
            out.append(f"parameters.{path} was {was}, now {now}")
    if old.get("objectives") != new.get("objectives"):
        out.append(f"the objectives were {old.get('objectives')}, now {new.get('objectives')}")
    if old.get("constraints") != new.get("constraints"):
        out.append(f"the constraints were {old.get('constraints')}, now {new.get('constraints')}")
    if old.get("reported") != new.get("reported"):
        was, now = (f.get("reported", "the objective") for f in (old, new))
        out.append(f"the pruner compared {was}, now {now} (pruner.metric)")
    if old.get("base_experiment_id") != new.get("base_experiment_id"):
        out.append(
            f"the base experiment was {old.get('base_experiment_id')}, now {new.get('base_experiment_id')}"
        )
    return out


def check_unchanged(study: Any, sw: Sweep, allow_changed: bool = False) -> None:
    """Refuse to add trials of another search to a study: the sweep file's fingerprint must be the one
    the study was created with (`--allow-changed` records the change in the study instead)."""
    import time

    now = fingerprint(sw)
    stored = study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is None:  # a new study, or one made before studies kept their fingerprint
        study.set_user_attr(FINGERPRINT_ATTR, now)
        return
    what = changes(stored, now)
    if not what:
        return
    if allow_changed:
        log = study.user_attrs.get("changes", [])
        study.set_user_attr("changes", [*log, {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changes": what}])
        study.set_user_attr(FINGERPRINT_ATTR, now)
        return
    raise EcomlabError(
        f"Study {sw.name!r} holds another search than {sw.source} now describes: {'; '.join(what)}. Adding "
        "trials would mix two searches in one study (the sampler, the best trial and the importances would "
        f"compare them as one). Rename the study (`name:` in the file), run with --new-study to start "
        f"{sw.name}-{digest(now)}, or with --allow-changed to go on with this one and record the change in it."
    )


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
    try:  # an instruct decoder prompted with no training, when the base backbone is one
        prompted = baseline.zero_shot(sw.base_experiment, console)
    except Exception as exc:  # noqa: BLE001 - a reference only
        console.print(f"[yellow]The zero-shot baseline was not scored:[/] {type(exc).__name__}: {exc}")
        prompted = None
    if prompted is not None:
        study.set_user_attr("zero_shot", {k: v for k, v in prompted.items() if k != "cache_hit"})
    return result


def run_first(study: Any, sw: Sweep, console: Console) -> None:
    """Queue the file's `enqueue` parameter sets and its warm start's best trials, once: a set the
    study already holds (queued or run) is skipped, so a resume queues nothing twice."""
    from experiments.sweep.file import optuna_params

    for entry in sw.spec.enqueue or []:
        study.enqueue_trial(optuna_params(sw.params, entry), skip_if_exists=True)
    if sw.spec.enqueue:
        console.print(f"enqueued {len(sw.spec.enqueue)} parameter set(s) to run first")
    if sw.spec.warm_start is not None:
        fits, skipped, source = warm_start(sw)
        for params in fits:
            study.enqueue_trial(params, skip_if_exists=True)
        console.print(
            f"warm start: {len(fits)} of the best trials of study {source} run first"
            + (f" ({skipped} do not fit this search space)" if skipped else "")
        )


def warm_start(sw: Sweep) -> tuple[list[dict[str, Any]], int, str]:
    """(the parameter sets of the earlier study's best `top_k` complete trials that fit this space,
    how many did not, its name)."""
    import optuna

    from experiments.results.storage import load_study

    ws = sw.spec.warm_start
    assert ws is not None
    url = ws.storage or os.environ.get(STORAGE_ENV) or sw.spec.storage
    if url is None:
        raise EcomlabError(f"warm_start.storage: give the storage of study {ws.study!r} (or --storage)")
    earlier = load_study(ws.study, url)
    done = earlier.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(earlier.directions) > 1:
        ranked = list(earlier.best_trials)
    else:
        sign = -1 if earlier.direction == optuna.study.StudyDirection.MAXIMIZE else 1
        ranked = sorted(done, key=lambda t: sign * t.value)
    fits, skipped = [], 0
    for t in ranked[: ws.top_k]:
        params = _fitting(sw, t.params)
        if params is None:
            skipped += 1
        else:
            fits.append(params)
    return fits, skipped, ws.study


def _fitting(sw: Sweep, params: dict[str, Any]) -> dict[str, Any] | None:
    """`params` restricted to this study's search space, or None when they do not fit it (a top-level
    parameter missing, or a value outside its range or choices)."""
    out: dict[str, Any] = {}
    todo = list(sw.searched)
    while todo:
        p = todo.pop(0)
        name = p.optuna_name if p.optuna_name in params else p.path
        if name not in params:
            return None
        v = params[name]
        if p.kind == "categorical" and v not in p.choices:
            return None
        if p.kind in ("float", "int") and not (p.low <= v <= p.high):
            return None
        out[p.optuna_name] = v
        for choice, sub in p.branches:
            if choice == v:
                todo.extend(q for q in sub if q.searched)
    return out
