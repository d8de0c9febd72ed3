"""Price prediction from product text plus numeric features.

The encoder (any backbone, with LoRA / freezing / pruning as for classification) turns the text into a
`head.text_dim` vector through its own head; an MLP reads that vector next to the standardised
numeric features and predicts the standardised (log) price. Loss is MSE on that scale; every metric
is reported in the price's own unit: RMSE, MAE, MAPE (as a fraction) and R².
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.regression import MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError, R2Score

from lightning_modules.price_regression import SPEC
from lightning_modules.price_regression.model import PriceModel
from lightning_modules.task_module import TaskModule


class PriceRegressionModule(TaskModule):
    """Logs `{train,val,test}/{loss,rmse,mae,mape,r2}` and `val/rmse_best`."""

    spec = SPEC

    def __init__(
        self,
        model: PriceModel,
        lr: float = 5e-5,
        weight_decay: float = 0.01,
        warmup: float = 0.1,
        schedule: str = "linear",
    ) -> None:
        super().__init__(model, lr, weight_decay, warmup, schedule)

    def metric_collection(self) -> MetricCollection:
        return MetricCollection(
            {
                "rmse": MeanSquaredError(squared=False),
                "mae": MeanAbsoluteError(),
                "mape": MeanAbsolutePercentageError(),
                "r2": R2Score(),
            }
        )

    @classmethod
    def from_config(cls, cfg: Any, dm: Any) -> PriceRegressionModule:
        from lightning_modules import backbones

        encoder = backbones.build_model(
            cfg, cfg.head.text_dim, dm.tokenizer, [f"t{i}" for i in range(cfg.head.text_dim)]
        )
        model = PriceModel(
            encoder,
            len(dm.meta["features"]),
            cfg.head.text_dim,
            cfg.head.hidden,
            cfg.head.dropout,
            dm.meta,
            cfg.data.log_target,
        )
        o = cfg.optim
        return cls(model, lr=o.lr, weight_decay=o.weight_decay, warmup=o.warmup, schedule=o.schedule)

    def raw_output(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The standardised (log) price the loss is computed on."""
        return self.model(batch["input_ids"], batch["attention_mask"], batch["features"])

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The predicted price."""
        return self.to_prediction(self.raw_output(batch))

    def to_prediction(self, out: torch.Tensor) -> torch.Tensor:
        return self.model.to_price(out)

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(out, self.model.scaled_target(batch["labels"]))

    def update_metrics(
        self, metrics: MetricCollection, out: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> None:
        metrics.update(self.model.to_price(out), batch["labels"])

    def prunable(self) -> list[tuple[nn.Module, str]]:
        from lightning_modules.backbones import prunable_linears

        return prunable_linears(self.model.encoder)

    def evaluate(self, dm: Any, out: Path) -> dict[str, float]:
        """The residual plot of the test split (true vs predicted, residual vs predicted)."""
        from lightning_modules.evaluation import save_residuals

        preds, prices = self.predictions(dm, "test")
        save_residuals(prices, preds, out / "residuals.png", "test split: price", unit="price")
        return {}
