"""Run records every machine can read, with nothing to set up: each finished sweep trial keeps what
`compare`, `study show`, `report`, `study best --export` and `reproduce` need (its config, manifest
and metrics) in the Optuna storage itself, as trial user attributes; with an artifact store, its files
(weights on request, curves, plots) go there too.

The artifact store is Optuna's own (`optuna.artifacts`): `FileSystemArtifactStore` on a folder every machine
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
from dataclasses import dataclass, field
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


# The record kept in the storage: one user attribute per file, each below what a MySQL TEXT column
# holds (64 KiB), so any RDB storage keeps it whole.
RECORD_ATTRS = {
    "config.yaml": "record:config",
    "manifest.json": "record:manifest",
    "metrics.json": "record:metrics",
}
MAX_ATTR_CHARS = 60_000
# manifest keys dropped (largest first) when a manifest is too large for one attribute
BULKY = (("data", "cleaning"), ("environment", "packages"), ("code", "untracked_files"))


def _fitting(part: dict[str, Any]) -> dict[str, Any]:
    """`part` as is, or without its bulkiest entries (named under `truncated`) until it fits."""
    import copy
    import json

    if len(json.dumps(part, default=str)) <= MAX_ATTR_CHARS:
        return part
    part, dropped = copy.deepcopy(part), []
    for outer, inner in BULKY:
        if isinstance(part.get(outer), dict) and inner in part[outer]:
            del part[outer][inner]
            dropped.append(f"{outer}.{inner}")
            if len(json.dumps(part, default=str)) <= MAX_ATTR_CHARS:
                break
    part["truncated"] = dropped
    return part


def keep_in_storage(trial: Any, rec_dir: Path) -> list[str]:
    """Keep a finished trial's config, manifest and metrics on the trial itself (its files stay where
    they were written); returns the files kept. A pruned trial has no metrics.json to keep."""
    rec = run_record.read_dir(rec_dir)
    parts = {"config.yaml": rec.config, "manifest.json": rec.manifest, "metrics.json": rec.metrics}
    kept = []
    for name, value in parts.items():
        if value is not None:
            trial.set_user_attr(RECORD_ATTRS[name], _fitting(value))
            kept.append(name)
    return kept


def from_storage(trial: Any, runs_root: Path) -> bool:
    """Write the record kept on `trial` into `runs_root/<id>/` (no weights, no curves), as the run
    wrote it; True when written. The folder appears whole or not at all."""
    attrs = trial.user_attrs
    exp_id = attrs.get("experiment_id")
    if not exp_id or RECORD_ATTRS["config.yaml"] not in attrs:
        return False
    dest = runs_root / run_record.check_id(exp_id)
    runs_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{exp_id}-", dir=runs_root))
    try:
        manifest = {**attrs.get(RECORD_ATTRS["manifest.json"], {}), "record_source": where_written(trial)}
        run_record.write_yaml(tmp / "config.yaml", attrs[RECORD_ATTRS["config.yaml"]])
        run_record.write_json(tmp / "manifest.json", manifest)
        if RECORD_ATTRS["metrics.json"] in attrs:
            run_record.write_json(tmp / "metrics.json", attrs[RECORD_ATTRS["metrics.json"]])
        if dest.exists():  # an incomplete local copy: the stored one replaces it
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def where_written(trial: Any) -> str:
    """`host:/path/to/runs/<id>` where the trial's run wrote its files, as far as the trial says."""
    attrs = trial.user_attrs
    return f"{attrs.get('host', 'an unknown host')}:{attrs.get('runs_dir', '?')}/{attrs.get('experiment_id', '?')}"


@dataclass
class Fetched:
    """What `fetch_study` brought here, and the records it could not reach (trial number -> where
    they were written)."""

    from_artifacts: int = 0
    from_storage: int = 0
    unreachable: dict[int, str] = field(default_factory=dict)

    def say_unreachable(self) -> str | None:
        """One paragraph naming how many records are not here and where they were written."""
        if not self.unreachable:
            return None
        where = sorted({w.rsplit("/", 1)[0] for w in self.unreachable.values()})
        trials = ", ".join(str(n) for n in sorted(self.unreachable))
        return (
            f"{len(self.unreachable)} finished trial record(s) (trials {trials}) are not on this machine and not "
            f"in the storage (they ran before records were kept there): they were written under {', '.join(where)}. "
            "Copy those folders into this runs folder, or give the study's artifact store with --artifacts."
        )


def fetch_study(study: Any, runs_root: Path, override: str | None = None) -> Fetched:
    """Bring every finished trial's record that is missing here into `runs_root`: from the study's
    artifact store when it has one (with the files), else from the storage itself. A record that can
    be fetched from neither is counted with where it was written; the rest of the study is still shown."""
    store = study_store(study, override)
    result = Fetched()
    for t in study.get_trials(deepcopy=False):
        exp_id = t.user_attrs.get("experiment_id")
        if t.state.name not in ("COMPLETE", "PRUNED") or not exp_id:
            continue
        if (runs_root / run_record.check_id(exp_id) / "config.yaml").is_file():
            continue
        if store is not None:
            try:
                if fetch_trial(store, study, t, runs_root):
                    result.from_artifacts += 1
                    continue
            except Exception as exc:  # noqa: BLE001 - one missing record must not hide the others
                from rich.console import Console

                Console(stderr=True).print(
                    f"[yellow]skipped:[/] trial {t.number}'s record could not be fetched from the artifact store "
                    f"{study.user_attrs.get(STUDY_ATTR)!r}: {type(exc).__name__}: {exc}",
                    highlight=False,
                )
        if from_storage(t, runs_root):
            result.from_storage += 1
        else:
            result.unreachable[t.number] = where_written(t)
    return result


def fetch_experiment(exp_id: str, runs_root: Path, url: str, override: str | None = None) -> bool:
    """Find the trial that ran `exp_id` in any study of the storage and bring its record here (from
    the artifact store, else from the storage itself)."""
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
                if from_storage(t, runs_root):
                    return True
    return False
