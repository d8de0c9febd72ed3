"""The one place that reaches into Optuna's private attributes, and why each is needed.

Optuna's public API names trials by number and studies by name; a few storage calls that ecomlab
needs take the internal ids instead, and only the study object holds its storage. Each attribute
below is read here and nowhere else; `tests/experiments/results/test_optuna_private.py` fails,
naming the attribute, when an Optuna release renames one.

- `Study._storage`: the storage a study was loaded with. Needed to fail a RUNNING trial by number
  from another process (`sweep.objective.fail_trial`), to read a trial's stored attributes while it
  runs, and for `optuna.artifacts.get_all_artifact_meta(storage=...)`.
- `Study._study_id`: storage calls for study-level system attributes (the sampler-seed counter)
  and for a trial id from a trial number take the study id.
- `Trial._trial_id` / `FrozenTrial._trial_id`: `RetryHeartbeatStaleTrialCallback` and the storage's
  per-trial calls take the trial id, which a `Trial` does not expose publicly.
- `_CachedStorage._backend`: `optuna.load_study(storage=rdb)` wraps an `RDBStorage` in a cache; the
  claim lock needs the RDB engine underneath.
"""

from __future__ import annotations

from typing import Any

# (owner, attribute) pairs read here; the adapter test checks each on real objects.
ATTRIBUTES = (
    ("optuna.study.Study", "_storage"),
    ("optuna.study.Study", "_study_id"),
    ("optuna.trial.Trial", "_trial_id"),
    ("optuna.trial.FrozenTrial", "_trial_id"),
    ("optuna.storages._cached_storage._CachedStorage", "_backend"),
)


def study_storage(study: Any) -> Any:
    """The storage the study was loaded with."""
    return study._storage


def study_id(study: Any) -> int:
    return study._study_id


def trial_id(trial: Any) -> int:
    """The storage id of a `Trial` or `FrozenTrial`."""
    return trial._trial_id


def rdb_storage(storage: Any) -> Any:
    """The `RDBStorage` under a (possibly cached) storage."""
    return getattr(storage, "_backend", storage)


def stored_trial(study: Any, trial: Any) -> Any:
    """The trial as the storage has it now (user attributes written by other processes included)."""
    return study_storage(study).get_trial(trial_id(trial))


def trial_by_number(study: Any, number: int) -> Any:
    """The stored `FrozenTrial` with this number."""
    storage = study_storage(study)
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id(study), number))
