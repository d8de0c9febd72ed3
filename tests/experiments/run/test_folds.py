"""`eval.folds: K`: stratified folds of train+val with test held out, one recorded model per fold,
the run's metrics their mean, and a pruner that can stop a trial after one fold."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import optuna
import pytest

from experiments.config import experiment_id, validate
from experiments.config.registry import build_datamodule
from experiments.core.errors import ConfigError
from experiments.results import run_record
from tests.conftest import tiny_config


def prepared(cfg, fold=None):
    dm = build_datamodule(cfg, fold=fold)
    return dm.prepared()


def test_folds_are_disjoint_stratified_and_never_hold_a_test_example() -> None:
    cfg = validate(tiny_config(eval={"folds": 3}))
    single = prepared(validate(tiny_config()))
    pool = Counter(
        zip(single.texts["train"] + single.texts["val"], single.labels["train"] + single.labels["val"])
    )
    vals = []
    for k in range(3):
        p = prepared(cfg, (k, 3))
        assert p.texts["test"] == single.texts["test"]  # test is held out, the same in every fold
        assert not set(p.texts["val"]) & set(single.texts["test"])
        assert Counter(zip(p.texts["train"] + p.texts["val"], p.labels["train"] + p.labels["val"])) == pool
        vals.append(Counter(zip(p.texts["val"], p.labels["val"])))
        share = Counter(p.labels["val"])["positive"] / len(p.labels["val"])
        overall = sum(1 for _, lab in pool.elements() if lab == "positive") / sum(pool.values())
        assert abs(share - overall) < 0.1  # stratified
    assert sum(vals, Counter()) == pool  # every train+val example is in exactly one fold's val


def test_a_cross_validated_run_records_every_fold_and_reports_their_mean(tmp_path: Path) -> None:
    from experiments.run.reproduce import reproduce
    from experiments.run.train import train

    cfg = validate(tiny_config(trainer={"max_epochs": 1}, eval={"folds": 3}))
    metrics = train(cfg)
    root = tmp_path / "runs" / experiment_id(cfg)
    folds = [json.loads((root / "folds" / str(k) / "metrics.json").read_text()) for k in range(3)]
    f1s = [m["val/f1"] for m in folds]
    assert metrics["val/f1"] == pytest.approx(sum(f1s) / 3)
    assert metrics["test/loss"] == pytest.approx(sum(m["test/loss"] for m in folds) / 3)
    assert metrics["val/f1_std"] == pytest.approx((sum((f - sum(f1s) / 3) ** 2 for f in f1s) / 3) ** 0.5)
    chosen = metrics["cv/chosen_fold"]
    assert metrics["cv/folds"] == 3 and f1s[chosen] == max(f1s)
    assert (root / "model.safetensors").read_bytes() == (
        root / "folds" / str(chosen) / "model.safetensors"
    ).read_bytes()
    rec = run_record.read(tmp_path / "runs", experiment_id(cfg))
    assert rec.manifest["cv"] == {"folds": 3, "chosen_fold": chosen}
    assert [f["val/f1"] for f in rec.manifest["folds"]] == f1s
    assert reproduce(experiment_id(cfg)).identical
    # the export is the chosen fold's model, rebuilt on that fold's split (the `tiny` tokenizer is the fold's)
    from experiments.ship.export import export_run
    from experiments.ship.predictor import INFO_FILE

    export_run(experiment_id(cfg), tmp_path / "model", tmp_path / "runs")
    info = json.loads((tmp_path / "model" / INFO_FILE).read_text())
    assert info["threshold"] == folds[chosen]["val/threshold"] == metrics["val/threshold"]


@pytest.mark.parametrize("val_check_interval", [1.0, 0.5])
def test_the_pruner_can_stop_a_trial_after_its_first_fold(tmp_path: Path, val_check_interval: float) -> None:
    """The pruner hears each fold's mean; validations inside a fold's epochs choose its checkpoint."""
    from experiments.run.train import train
    from experiments.sweep.rank_group import DistributedPruning

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    trial = study.ask()  # any F1 is below 2.0: the pruner stops the trial at its first report
    trainer = {"max_epochs": 2, "val_check_interval": val_check_interval}
    cfg = validate(tiny_config(trainer=trainer, eval={"folds": 3}))
    with pytest.raises(optuna.TrialPruned, match="after fold 0"):
        train(cfg, extra_callbacks=[DistributedPruning(trial, "val/f1")])
    root = tmp_path / "runs" / experiment_id(cfg)
    first = json.loads((root / "folds" / "0" / "metrics.json").read_text())
    assert not (root / "folds" / "1").exists()  # no second fold was trained
    assert study.trials[0].intermediate_values == {0: first["val/f1"]}  # per fold, not per epoch
    assert json.loads((root / "manifest.json").read_text())["status"] == "pruned"


def test_cross_validation_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(ConfigError) as err:
        validate(tiny_config(eval={"folds": 3}, trainer={"devices": 2}, distill={"teacher": "0123456789ab"}))
    assert "eval.folds: cross-validation trains its folds on one device" in str(err.value)
    assert "distill.teacher cannot give its soft labels" in str(err.value)
    with pytest.raises(ConfigError, match="eval.folds: task 'click_through'"):
        validate({"data": {"dataset": "open_bandit"}, "eval": {"folds": 3}})
