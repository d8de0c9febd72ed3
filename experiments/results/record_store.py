"""Run records every machine can read: each sweep trial's record goes to an Optuna artifact store.

The store is Optuna's own (`optuna.artifacts`): `FileSystemArtifactStore` on a folder every machine
mounts, or `Boto3ArtifactStore` for `s3://bucket` (credentials from boto3's usual places, never from
ecomlab). Each file of a trial's record is one artifact of its trial (so optuna-dashboard lists them
too); the store's location is kept on the study (`user_attrs["artifacts"]`), so a machine that ran
none of the trials finds it through the storage alone. `fetch_study` and `fetch_experiment` bring
missing records into the local runs folder, where `compare`, `report`, `reproduce` and
`study best --export` read them as usual.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from experiments.core.errors import EcomlabError
from experiments.results import optuna_private, run_record

ARTIFACTS_ENV = "ECOMLAB_ARTIFACTS"
STUDY_ATTR = "artifacts"
WEIGHTS = "model.safetensors"


def open_store(location: str) -> Any:
    """An Optuna artifact store: `s3://bucket` or a folder (created if missing)."""
    from optuna.artifacts import Boto3ArtifactStore, FileSystemArtifactStore

    if location.startswith("s3://"):
        bucket = location[len("s3://") :].strip("/")
        if not bucket or "/" in bucket:
            raise EcomlabError(f"artifacts: {location!r}: give an S3 bucket as s3://bucket (no key prefix).")
        try:
            import boto3
        except ImportError:
            raise EcomlabError("artifacts: an s3:// store needs boto3 (pip install boto3).") from None
        return Boto3ArtifactStore(bucket, client=boto3.client("s3"))
    if "://" in location:
        raise EcomlabError(f"artifacts: {location!r}: use a folder path or s3://bucket.")
    path = Path(location)
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(path)


def record_files(rec_dir: Path, weights: bool) -> list[Path]:
    """The files of a record worth sharing: every top-level file (config, manifest, metrics.json,
    metrics.csv, confusion matrix, per-class tables...), the weights only when asked."""
    if not rec_dir.is_dir():
        return []
    return sorted(
        p
        for p in rec_dir.iterdir()
        if p.is_file() and not p.name.startswith(".") and (weights or p.name != WEIGHTS)
    )


def upload_record(store: Any, trial: Any, rec_dir: Path, weights: bool) -> int:
    """Upload a trial's record, one artifact per file; returns how many."""
    from optuna.artifacts import upload_artifact

    files = record_files(rec_dir, weights)
    for f in files:
        upload_artifact(artifact_store=store, file_path=str(f), study_or_trial=trial)
    return len(files)


def study_store(study: Any, override: str | None = None) -> Any | None:
    location = override or os.environ.get(ARTIFACTS_ENV) or study.user_attrs.get(STUDY_ATTR)
    return open_store(location) if location else None


def fetch_trial(store: Any, study: Any, trial: Any, runs_root: Path) -> bool:
    """Bring one trial's record into `runs_root` if it is not there; True when fetched."""
    from optuna.artifacts import download_artifact, get_all_artifact_meta

    exp_id = trial.user_attrs.get("experiment_id")
    if not exp_id or (runs_root / run_record.check_id(exp_id) / "config.yaml").is_file():
        return False
    metas = get_all_artifact_meta(trial, storage=optuna_private.study_storage(study))
    if not any(m.filename == "config.yaml" for m in metas):
        return False
    runs_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{exp_id}-", dir=runs_root))
    try:
        for m in metas:
            name = Path(m.filename).name  # never a path out of the record folder
            if name in ("", ".", ".."):
                continue
            download_artifact(artifact_store=store, file_path=str(tmp / name), artifact_id=m.artifact_id)
        dest = runs_root / exp_id
        if dest.exists():  # an incomplete local copy: the stored one replaces it
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def fetch_study(study: Any, runs_root: Path, override: str | None = None) -> int:
    """Fetch every record of the study missing here; returns how many were fetched. A record that
    cannot be fetched (the store is not mounted here, an artifact is gone) is reported and skipped:
    the rest of the study is still shown."""
    store = study_store(study, override)
    if store is None:
        return 0
    fetched = 0
    for t in study.get_trials(deepcopy=False):
        try:
            fetched += fetch_trial(store, study, t, runs_root)
        except Exception as exc:  # noqa: BLE001 - one missing record must not hide the others
            from rich.console import Console

            Console(stderr=True).print(
                f"[yellow]skipped:[/] trial {t.number}'s record could not be fetched from the artifact store "
                f"{study.user_attrs.get(STUDY_ATTR)!r}: {type(exc).__name__}: {exc}",
                highlight=False,
            )
    return fetched


def fetch_experiment(exp_id: str, runs_root: Path, url: str, override: str | None = None) -> bool:
    """Find the trial that ran `exp_id` in any study of the storage and fetch its record."""
    import optuna

    from experiments.results.storage import storage

    run_record.check_id(exp_id)
    rdb = storage(url)
    for summary in optuna.get_all_study_summaries(rdb, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=rdb)
        for t in study.get_trials(deepcopy=False):
            if t.user_attrs.get("experiment_id") == exp_id:
                store = study_store(study, override)
                if store is not None and fetch_trial(store, study, t, runs_root):
                    return True
    return False
