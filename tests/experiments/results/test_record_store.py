"""Run records through Optuna's artifact store: uploaded per file, fetched on a machine without them."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from experiments.results import record_store
from experiments.results.storage import storage


def a_trial_with_a_record(tmp_path: Path) -> tuple[optuna.Study, Path]:
    study = optuna.create_study(study_name="s", storage=storage(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    store_dir = tmp_path / "store"
    study.set_user_attr(record_store.STUDY_ATTR, str(store_dir))
    trial = study.ask()
    trial.set_user_attr("experiment_id", "0123456789ab")
    rec = tmp_path / "here" / "0123456789ab"
    rec.mkdir(parents=True)
    for name, text in {
        "config.yaml": "seed: 1\n",
        "manifest.json": "{}",
        "metrics.json": '{"val/f1": 0.5}',
        "model.safetensors": "weights",
    }.items():
        (rec / name).write_text(text)
    (rec / "checkpoints").mkdir()
    n = record_store.upload_record(record_store.open_store(str(store_dir)), trial, rec, weights=False)
    assert n == 3  # top-level files, no weights, no folders
    study.tell(trial, 0.5)
    return study, store_dir


def test_another_machine_fetches_the_record_without_its_weights(tmp_path: Path) -> None:
    study, _ = a_trial_with_a_record(tmp_path)
    there = tmp_path / "there"
    assert record_store.fetch_study(study, there) == 1
    assert sorted(p.name for p in (there / "0123456789ab").iterdir()) == [
        "config.yaml",
        "manifest.json",
        "metrics.json",
    ]
    assert (there / "0123456789ab" / "metrics.json").read_text() == '{"val/f1": 0.5}'
    assert record_store.fetch_study(study, there) == 0  # already here: nothing fetched twice


def test_a_record_that_cannot_be_fetched_is_reported_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study, store_dir = a_trial_with_a_record(tmp_path)
    shutil.rmtree(store_dir)  # the shared folder is not mounted on this machine
    assert record_store.fetch_study(study, tmp_path / "there") == 0
    assert "trial 0's record could not be fetched" in capsys.readouterr().err
    assert not [p for p in (tmp_path / "there").iterdir() if not p.name.startswith(".")]
