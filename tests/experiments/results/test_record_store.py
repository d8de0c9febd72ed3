"""Run records through Optuna's artifact store: uploaded per file, fetched on a machine without them."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from experiments.results import record_store
from experiments.results.storage import storage


def a_record(tmp_path: Path, manifest: str) -> Path:
    """A run record folder `here/0123456789ab` with its config, manifest, metrics and weights."""
    rec = tmp_path / "here" / "0123456789ab"
    rec.mkdir(parents=True)
    for name, text in {
        "config.yaml": "seed: 1\n",
        "manifest.json": manifest,
        "metrics.json": '{"val/f1": 0.5}',
        "model.safetensors": "weights",
    }.items():
        (rec / name).write_text(text)
    return rec


def a_trial_with_a_record(tmp_path: Path) -> tuple[optuna.Study, Path]:
    study = optuna.create_study(study_name="s", storage=storage(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    store_dir = tmp_path / "store"
    study.set_user_attr(record_store.STUDY_ATTR, str(store_dir))
    trial = study.ask()
    trial.set_user_attr("experiment_id", "0123456789ab")
    rec = a_record(tmp_path, manifest="{}")
    (rec / "checkpoints").mkdir()
    n = record_store.upload_record(record_store.open_store(str(store_dir)), trial, rec, weights=False)
    assert n == 3  # top-level files, no weights, no folders
    study.tell(trial, 0.5)
    return study, store_dir


def test_another_machine_fetches_the_record_without_its_weights(tmp_path: Path) -> None:
    study, _ = a_trial_with_a_record(tmp_path)
    there = tmp_path / "there"
    assert record_store.fetch_study(study, there).from_artifacts == 1
    assert sorted(p.name for p in (there / "0123456789ab").iterdir()) == [
        "config.yaml",
        "manifest.json",
        "metrics.json",
    ]
    assert (there / "0123456789ab" / "metrics.json").read_text() == '{"val/f1": 0.5}'
    again = record_store.fetch_study(study, there)  # already here: nothing fetched twice
    assert (again.from_artifacts, again.from_storage, again.unreachable) == (0, 0, {})


def test_a_record_that_cannot_be_fetched_is_reported_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study, store_dir = a_trial_with_a_record(tmp_path)
    shutil.rmtree(store_dir)  # the shared folder is not mounted on this machine
    fetched = record_store.fetch_study(study, tmp_path / "there")
    assert fetched.from_artifacts == 0 and fetched.unreachable == {0: "an unknown host:?/0123456789ab"}
    assert "trial 0's record could not be fetched" in capsys.readouterr().err
    assert not [p for p in (tmp_path / "there").iterdir() if not p.name.startswith(".")]
    assert "1 finished trial record(s) (trials 0)" in fetched.say_unreachable()


def test_a_record_kept_in_the_storage_is_written_here_whole_without_weights(tmp_path: Path) -> None:
    """The storage-only path: no artifact store, the trial's config, manifest and metrics kept on it."""
    study = optuna.create_study(study_name="s", storage=storage(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    trial = study.ask()
    for key, value in {"experiment_id": "0123456789ab", "host": "node-1", "runs_dir": "/data/runs"}.items():
        trial.set_user_attr(key, value)
    rec = a_record(tmp_path, manifest='{"status": "completed"}')
    assert record_store.keep_in_storage(trial, rec) == ["config.yaml", "manifest.json", "metrics.json"]
    study.tell(trial, 0.5)
    there = tmp_path / "there"
    fetched = record_store.fetch_study(study, there)
    assert fetched.from_storage == 1 and not fetched.unreachable
    names = sorted(p.name for p in (there / "0123456789ab").iterdir())
    assert names == ["config.yaml", "manifest.json", "metrics.json"]  # no weights: they stayed on node-1
    manifest = (there / "0123456789ab" / "manifest.json").read_text()
    assert '"status": "completed"' in manifest and "node-1:/data/runs/0123456789ab" in manifest
