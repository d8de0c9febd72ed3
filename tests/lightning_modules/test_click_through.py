"""Click-through: normalised entropy and calibration under click weighting, on hand-checked cases."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lightning_modules.click_through.module import ClickThroughModule, CtrModel, binary_entropy


def test_normalised_entropy_of_the_base_rate_is_one() -> None:
    base = 0.2
    module = ClickThroughModule(torch.nn.Identity(), base_ctr=base)
    m = module.val_metrics
    y = torch.tensor([1, 0, 0, 0, 0])
    logit = torch.full((5,), math.log(base / (1 - base)))  # always predict the base rate
    m["logloss"].update(
        torch.nn.functional.binary_cross_entropy_with_logits(logit, y.float(), reduction="none")
    )
    logloss = float(m["logloss"].compute())
    # mean log-loss of predicting 0.2 on one click in five = H(0.2): NE = 1
    assert logloss == pytest.approx(binary_entropy(base), rel=1e-6)
    assert logloss / module.base_entropy == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("rate,pos_weight", [(1.0, 1.0), (0.1, 1.0), (1.0, 20.0), (0.25, 4.0)])
def test_calibration_undoes_negative_sampling_and_click_weighting(rate: float, pos_weight: float) -> None:
    # learning on data with non-clicks kept at `rate` and clicks weighted by `pos_weight` multiplies
    # the odds by pos_weight / rate; the calibrated logit divides them out again
    model = CtrModel([3], 1, 2, [4], 0.0, [0.0], [1.0], math.log(rate) - math.log(pos_weight))
    p_true = 0.01
    learned_odds = p_true / (1 - p_true) * pos_weight / rate
    calibrated = model.calibrated(torch.tensor([math.log(learned_odds)]))
    assert torch.sigmoid(calibrated).item() == pytest.approx(p_true, rel=1e-5)


def test_a_click_through_run_reproduces_exactly(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datamodules.open_bandit import OpenBanditData
    from experiments.config import experiment_id, validate
    from experiments.run.reproduce import reproduce
    from experiments.run.train import train
    from tests.conftest import FIXTURES

    obd = FIXTURES / "obd" / "random" / "all"
    monkeypatch.setattr(
        OpenBanditData, "source_files", lambda self: [obd / "all.csv", obd / "item_context.csv"]
    )
    cfg = validate(
        {
            "data": {"dataset": "open_bandit", "batch_size": 16},
            "ctr": {"pos_weight": "auto"},
            "optim": {"lr": 1e-2},
            "trainer": {"max_epochs": 2},
            "tracking": {"mode": "disabled"},
        }
    )
    assert cfg.task == "click_through" and cfg.trainer.monitor == "val/auc"
    metrics = train(cfg)
    for key in (
        "val/auc",
        "test/auc",
        "test/logloss",
        "test/ne",
        "val/threshold",
        "test/recall_at_threshold",
        "test/rig",
        "val/auc_best",
    ):
        assert key in metrics, key
    assert metrics["test/rig"] == pytest.approx(1 - metrics["test/ne"], abs=1e-5)  # same log-loss, two ways
    rec = tmp_path / "runs" / experiment_id(cfg)
    assert (rec / "confusion_matrix.png").is_file()
    manifest = json.loads((rec / "manifest.json").read_text())
    assert list(manifest["assets"]) == ["open_bandit"] and manifest["tokenizer"] is None  # no text encoder
    assert reproduce(experiment_id(cfg)).identical


def test_pruning_the_mlp_is_what_sparsity_measures(monkeypatch: pytest.MonkeyPatch) -> None:
    """`prune.ratio` prunes the MLP's Linear weights and `model/sparsity` measures those (it used to
    measure the embeddings, the longest ModuleList, and always said 0.0)."""
    from datamodules.open_bandit import OpenBanditData
    from experiments.config import validate
    from experiments.run.train import train
    from tests.conftest import FIXTURES

    obd = FIXTURES / "obd" / "random" / "all"
    monkeypatch.setattr(
        OpenBanditData, "source_files", lambda self: [obd / "all.csv", obd / "item_context.csv"]
    )
    cfg = validate(
        {
            "data": {"dataset": "open_bandit", "batch_size": 16},
            "prune": {"ratio": 0.5, "epochs": 1},
            "trainer": {"max_epochs": 1, "save_weights": False},
            "tracking": {"mode": "disabled"},
        }
    )
    metrics = train(cfg)
    assert metrics["model/sparsity"] == pytest.approx(0.5, abs=0.01)
