"""The private attributes of Optuna that ecomlab reads, all in `experiments.results.optuna_private`,
exist on real objects of the installed release; a rename fails here, naming the attribute."""

from __future__ import annotations

import pkgutil

import optuna
import pytest

from experiments.results import optuna_private
from experiments.results.storage import storage


@pytest.fixture
def study(tmp_path):
    rdb = storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    study = optuna.load_study(study_name=optuna.create_study(storage=rdb).study_name, storage=rdb)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    return study


def test_every_private_attribute_read_exists_on_this_optuna_release(study) -> None:
    trial = study.ask()
    objects = {
        "optuna.study.Study": study,
        "optuna.trial.Trial": trial,
        "optuna.trial.FrozenTrial": study.trials[0],
        "optuna.storages._cached_storage._CachedStorage": optuna_private.study_storage(study),
    }
    for owner, attribute in optuna_private.ATTRIBUTES:
        cls = pkgutil.resolve_name(owner)
        assert isinstance(objects[owner], cls), f"{owner}: the object ecomlab reads is no longer one"
        assert hasattr(objects[owner], attribute), (
            f"optuna {optuna.__version__} renamed {owner}.{attribute}, which "
            "experiments/results/optuna_private.py reads; update the adapter"
        )


def test_the_adapter_reaches_the_same_trial_by_id_and_by_number(study) -> None:
    trial = study.ask()
    trial.set_user_attr("seen", True)
    by_number = optuna_private.trial_by_number(study, trial.number)
    assert optuna_private.trial_id(by_number) == optuna_private.trial_id(trial)
    assert optuna_private.stored_trial(study, trial).user_attrs == {"seen": True}
    assert optuna_private.rdb_storage(optuna_private.study_storage(study)).engine is not None
