"""Price regression: its metrics on a hand-checked case, the (log) target scaling, and a full run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from datamodules.electronics_prices import ElectronicsPricesData
from experiments.config import experiment_id, validate
from experiments.run.train import train
from lightning_modules.price_regression.module import PriceModel, PriceRegressionModule
from tests.conftest import FIXTURES


def test_metrics_on_a_hand_checked_case() -> None:
    module = PriceRegressionModule(torch.nn.Identity())
    m = module.test_metrics
    m.update(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 5.0]))
    got = {k: round(float(v), 6) for k, v in m.compute().items()}
    # RMSE sqrt((1+1)/2) = 1; MAE 1; MAPE (1/1 + 1/5)/2 = 0.6; R2 1 - 2/8 = 0.75
    assert got == {"test/rmse": 1.0, "test/mae": 1.0, "test/mape": 0.6, "test/r2": 0.75}


@pytest.mark.parametrize("log_target", [True, False])
def test_target_scaling_round_trips(log_target: bool) -> None:
    stats = {
        "feature_mean": [0.0],
        "feature_std": [1.0],
        "price_mean": 500.0,
        "price_std": 200.0,
        "log_price_mean": 6.0,
        "log_price_std": 0.8,
    }
    model = PriceModel(torch.nn.Identity(), 1, 4, 8, 0.0, stats, log_target)
    price = torch.tensor([19.99, 450.0, 3999.0])
    assert torch.allclose(model.to_price(model.scaled_target(price)), price, rtol=1e-5)
    if log_target:
        assert torch.allclose(
            model.scaled_target(torch.tensor([torch.e**6 - 1])), torch.tensor([0.0]), atol=1e-5
        )


def test_a_price_run_writes_its_record_with_the_residual_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        ElectronicsPricesData,
        "source_files",
        lambda self: [FIXTURES / "electronics" / "electronics_dataset.csv"],
    )
    cfg = validate(
        {
            "data": {
                "dataset": "electronics_prices",
                "max_length": 32,
                "batch_size": 8,
                "val_fraction": 0.2,
                "test_fraction": 0.2,
            },
            "model": {"backbone": "tiny", "tiny": {"hidden": 32, "vocab_size": 200}},
            "optim": {"lr": 3e-3, "warmup": 0.0},
            "trainer": {"max_epochs": 2},
            "tracking": {"mode": "disabled"},
        }
    )
    assert cfg.task == "price_regression" and cfg.trainer.monitor == "val/rmse" and cfg.trainer.mode == "min"
    metrics = train(cfg)
    rec = tmp_path / "runs" / experiment_id(cfg)
    assert (rec / "residuals.png").is_file() and (rec / "model.safetensors").is_file()
    assert json.loads((rec / "metrics.json").read_text()) == metrics
    assert "electronics_products" in json.loads((rec / "manifest.json").read_text())["assets"]
    for key in ("val/rmse", "test/rmse", "test/mae", "test/mape", "test/r2", "val/rmse_best"):
        assert key in metrics, key
    assert metrics["val/rmse_best"] == pytest.approx(metrics["val/rmse"])  # the best checkpoint is evaluated
    # the standardisation of the train split is part of the saved weights
    from safetensors.torch import load_file

    assert "feature_mean" in load_file(rec / "model.safetensors")
