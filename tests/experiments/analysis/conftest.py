"""One real 3-trial tiny sweep, shared by the report and table tests (they only read copies of it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from tests.conftest import tiny_config
from tests.experiments.sweep.test_sweep import study_of, sweep_cli, write_sweep


@pytest.fixture(scope="session")
def study_dir(tmp_path_factory: pytest.TempPathFactory, asset_cache: Path) -> Path:
    folder = tmp_path_factory.mktemp("report-study")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECOMLAB_CACHE", str(asset_cache))
        mp.setenv("ECOMLAB_RUNS", str(folder / "runs"))
        base = tiny_config(data={"batch_size": 8}, trainer={"max_epochs": 2})
        sweep_cli(str(write_sweep(folder, base=base, budget={"n_trials": 3}, pruner={"type": "none"})))
    return folder


@pytest.fixture
def study(study_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> optuna.Study:
    """A copy of the study and its records in this test's folder (ECOMLAB_RUNS points at it)."""
    shutil.copytree(study_dir / "runs", tmp_path / "runs")
    monkeypatch.setenv("ECOMLAB_RUNS", str(tmp_path / "runs"))
    return study_of(tmp_path)


def add_pruned_trial(study: optuna.Study, value: float = 0.3) -> optuna.trial.FrozenTrial:
    """A trial that Hyperband stopped after one epoch, as a sweep stores it (no run record)."""
    done = next(t for t in study.get_trials() if t.state.name == "COMPLETE")
    study.add_trial(
        optuna.trial.create_trial(
            params=done.params,
            distributions=done.distributions,
            state=optuna.trial.TrialState.PRUNED,
            intermediate_values={0: value},
        )
    )
    return study.get_trials()[-1]
