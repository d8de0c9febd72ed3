"""Price prediction from product text plus numeric features.

The encoder (any backbone, with LoRA / freezing / pruning as for classification) turns the text into a
`head.text_dim` vector through its own head; an MLP reads that vector next to the standardised
numeric features and predicts the standardised (log) price. Loss is MSE on that scale; every metric
is reported in the price's own unit: RMSE, MAE, MAPE (as a fraction) and R².
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection, MinMetric
from torchmetrics.regression import MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError, R2Score

from lightning_modules.optimization import adamw_with_warmup


class PriceModel(nn.Module):
    """Encoder + MLP, with the train split's standardisation kept as buffers (saved with the weights)."""

    def __init__(self, encoder: nn.Module, n_features: int, text_dim: int, hidden: int, dropout: float,
                 stats: dict[str, Any], log_target: bool) -> None:  # fmt: skip
        super().__init__()
        self.encoder = encoder
        self.mlp = nn.Sequential(nn.Linear(text_dim + n_features, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, 1))  # fmt: skip
        self.log_target = log_target
        key = "log_price" if log_target else "price"
        self.register_buffer("feature_mean", torch.tensor(stats["feature_mean"], dtype=torch.float32))
        self.register_buffer("feature_std", torch.tensor(stats["feature_std"], dtype=torch.float32))
        self.register_buffer("target_mean", torch.tensor(stats[f"{key}_mean"], dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(stats[f"{key}_std"], dtype=torch.float32))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        text = self.encoder(input_ids=input_ids, attention_mask=attention_mask).logits
        x = torch.cat([text, (features - self.feature_mean) / self.feature_std], dim=-1)
        return self.mlp(x).squeeze(-1)

    def scaled_target(self, price: torch.Tensor) -> torch.Tensor:
        t = torch.log1p(price) if self.log_target else price
        return (t - self.target_mean) / self.target_std

    def to_price(self, out: torch.Tensor) -> torch.Tensor:
        t = out * self.target_std + self.target_mean
        return torch.expm1(t) if self.log_target else t


class PriceRegressionModule(pl.LightningModule):
    """Logs `{train,val,test}/{loss,rmse,mae,mape,r2}` and `val/rmse_best`."""

    name = "price_regression"
    METRICS = ("rmse", "mae", "mape", "r2", "loss")

    def __init__(self, model: PriceModel, lr: float = 5e-5, weight_decay: float = 0.01, warmup: float = 0.1,
                 schedule: str = "linear") -> None:  # fmt: skip
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        metrics = MetricCollection({"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(),
                                    "mape": MeanAbsolutePercentageError(), "r2": R2Score()})  # fmt: skip
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.val_rmse_best = MinMetric()

    @classmethod
    def from_config(cls, cfg: Any, dm: Any) -> PriceRegressionModule:
        from experiments import backbones

        encoder = backbones.build_model(cfg, cfg.head.text_dim, dm.tokenizer, [f"t{i}" for i in range(cfg.head.text_dim)])
        model = PriceModel(encoder, len(dm.meta["features"]), cfg.head.text_dim, cfg.head.hidden, cfg.head.dropout,
                           dm.meta, cfg.data.log_target)  # fmt: skip
        o = cfg.optim
        return cls(model, lr=o.lr, weight_decay=o.weight_decay, warmup=o.warmup, schedule=o.schedule)

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The predicted price."""
        return self.model.to_price(self.model(batch["input_ids"], batch["attention_mask"], batch["features"]))

    def _step(self, batch: dict[str, torch.Tensor], metrics: MetricCollection, stage: str) -> torch.Tensor:
        out = self.model(batch["input_ids"], batch["attention_mask"], batch["features"])
        loss = F.mse_loss(out, self.model.scaled_target(batch["labels"]))
        metrics.update(self.model.to_price(out.detach()), batch["labels"])
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True,
                 batch_size=len(batch["labels"]))  # fmt: skip
        return loss

    def prunable(self) -> list[tuple[nn.Module, str]]:
        from experiments.backbones import prunable_linears

        return prunable_linears(self.model.encoder)

    def on_train_start(self) -> None:
        self.val_rmse_best.reset()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.train_metrics, "train")

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values)
        self.val_rmse_best(values["val/rmse"])
        self.log("val/rmse_best", self.val_rmse_best.compute(), prog_bar=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, self.test_metrics, "test")

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def final_metrics(self) -> dict[str, float]:
        return {"val/rmse_best": float(self.val_rmse_best.compute())}

    def evaluate(self, dm: Any, out: Path) -> dict[str, float]:
        """The residual plot of the test split (true vs predicted, residual vs predicted)."""
        from lightning_modules.evaluation import predict, save_residuals

        preds, prices = predict(self, dm.test_dataloader())
        save_residuals(prices, preds, out / "residuals.png", "test split: price", unit="price")
        return {}

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        return adamw_with_warmup(self.model, hp.lr, hp.weight_decay, hp.warmup, hp.schedule,
                                 self.trainer.estimated_stepping_batches)  # fmt: skip
