"""Click-through prediction for recommendation and ad placement: embeddings of the categorical
features (item, position, user and item features) plus standardised numeric features -> MLP -> logit.

Clicks are rare, so two knobs handle the imbalance: `ctr.pos_weight` (loss weight of a click; `auto`
= non-clicks / clicks in train) and `data.negative_sampling` (non-clicks kept in train). Both change
the odds the network learns by a known factor, so the reported probability shifts its logit by
log(rate) - log(pos_weight) and stays calibrated. Metrics: AUC, log-loss, normalised
entropy (log-loss divided by the entropy of the train click rate; below 1 beats predicting the base
rate; 1 - NE is the relative information gain), and after training the decision threshold picked on
val (best F1) with its test precision, recall and F1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import BinaryAUROC

from lightning_modules.optimization import adamw_with_warmup


class CtrModel(nn.Module):
    def __init__(self, cardinalities: list[int], n_numeric: int, embedding_dim: int, hidden: list[int],
                 dropout: float, numeric_mean: list[float], numeric_std: list[float], logit_shift: float) -> None:  # fmt: skip
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_dim) for n in cardinalities)
        layers: list[nn.Module] = []
        width = embedding_dim * len(cardinalities) + n_numeric
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("numeric_mean", torch.tensor(numeric_mean, dtype=torch.float32))
        self.register_buffer("numeric_std", torch.tensor(numeric_std, dtype=torch.float32))
        self.register_buffer("logit_shift", torch.tensor(logit_shift, dtype=torch.float32))

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """The training logit (on the negative-sampled distribution)."""
        emb = [e(categorical[:, i]) for i, e in enumerate(self.embeddings)]
        x = torch.cat([*emb, (numeric - self.numeric_mean) / self.numeric_std], dim=-1)
        return self.mlp(x).squeeze(-1)

    def calibrated(self, logit: torch.Tensor) -> torch.Tensor:
        """The logit of the true click probability (undoes negative sampling and click weighting)."""
        return logit + self.logit_shift


def binary_entropy(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


class ClickThroughModule(pl.LightningModule):
    """Logs `{train,val,test}/{loss,auc,logloss,ne}` and `val/auc_best`."""

    name = "click_through"
    METRICS = ("auc", "logloss", "ne", "loss")

    def __init__(self, model: CtrModel, base_ctr: float, pos_weight: float = 1.0, lr: float = 1e-3,
                 weight_decay: float = 0.0, warmup: float = 0.0, schedule: str = "constant") -> None:  # fmt: skip
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.base_entropy = binary_entropy(base_ctr)
        for stage in ("train", "val", "test"):
            setattr(self, f"{stage}_metrics", MetricCollection({"auc": BinaryAUROC(), "logloss": MeanMetric()},
                                                               prefix=f"{stage}/"))  # fmt: skip
        self.val_auc_best = MaxMetric()

    @classmethod
    def from_config(cls, cfg: Any, dm: Any) -> ClickThroughModule:
        meta, c = dm.meta, cfg.ctr
        labels = dm.splits["train"].labels
        clicks = int(labels.sum())
        pos_weight = (len(labels) - clicks) / max(1, clicks) if c.pos_weight == "auto" else float(c.pos_weight)
        model = CtrModel(meta["cardinalities"], len(meta["numeric"]), c.embedding_dim, c.hidden, c.dropout,
                         meta["numeric_mean"], meta["numeric_std"],
                         math.log(meta["negative_sampling"]) - math.log(pos_weight))  # fmt: skip
        o = cfg.optim
        return cls(model, meta["base_ctr"], pos_weight=pos_weight, lr=o.lr, weight_decay=o.weight_decay,
                   warmup=o.warmup, schedule=o.schedule)  # fmt: skip

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The calibrated click logit."""
        return self.model.calibrated(self.model(batch["categorical"], batch["numeric"]))

    def _step(self, batch: dict[str, torch.Tensor], metrics: MetricCollection, stage: str) -> torch.Tensor:
        logit = self.model(batch["categorical"], batch["numeric"])
        y = batch["labels"].float()
        weight = torch.where(y > 0, torch.full_like(y, self.hparams.pos_weight), torch.ones_like(y))
        loss = F.binary_cross_entropy_with_logits(logit, y, weight=weight)
        calibrated = self.model.calibrated(logit.detach())
        metrics["auc"].update(torch.sigmoid(calibrated), batch["labels"])
        metrics["logloss"].update(F.binary_cross_entropy_with_logits(calibrated, y, reduction="none"))
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def _log_epoch(self, metrics: MetricCollection, stage: str) -> dict[str, torch.Tensor]:
        values = metrics.compute()
        values[f"{stage}/ne"] = values[f"{stage}/logloss"] / self.base_entropy
        metrics.reset()
        self.log_dict(values)
        return values

    def prunable(self) -> list[tuple[nn.Module, str]]:
        return [(m, "weight") for m in self.model.mlp if isinstance(m, nn.Linear)]

    def on_train_start(self) -> None:
        self.val_auc_best.reset()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.train_metrics, "train")

    def on_train_epoch_end(self) -> None:
        self._log_epoch(self.train_metrics, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        values = self._log_epoch(self.val_metrics, "val")
        self.val_auc_best(values["val/auc"])
        self.log("val/auc_best", self.val_auc_best.compute(), prog_bar=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, self.test_metrics, "test")

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.test_metrics, "test")

    def final_metrics(self) -> dict[str, float]:
        return {"val/auc_best": float(self.val_auc_best.compute())}

    def evaluate(self, dm: Any, out: Path) -> dict[str, float]:
        """Threshold on val (best F1), its test precision/recall/F1, the test RIG, confusion matrix PNG."""
        from sklearn.metrics import f1_score, log_loss, precision_score, recall_score

        from lightning_modules.evaluation import best_threshold, predict, save_confusion_matrix

        val_logit, val_y = predict(self, dm.val_dataloader())
        logit, y = predict(self, dm.test_dataloader())
        p_val, p = torch.sigmoid(torch.as_tensor(val_logit)).numpy(), torch.sigmoid(torch.as_tensor(logit)).numpy()
        threshold = best_threshold(p_val, val_y)
        preds = (p >= threshold).astype(int)
        save_confusion_matrix(y, preds, ["no_click", "click"], out / "confusion_matrix.png",
                              "test confusion matrix (threshold chosen on val)")  # fmt: skip
        extra = {
            "val/threshold": threshold,
            "test/f1_at_threshold": float(f1_score(y, preds, zero_division=0)),
            "test/precision_at_threshold": float(precision_score(y, preds, zero_division=0)),
            "test/recall_at_threshold": float(recall_score(y, preds, zero_division=0)),
            "test/rig": 1.0 - float(log_loss(y, p, labels=[0, 1])) / self.base_entropy,
        }
        (out / "per_class.json").write_text(json.dumps({"clicks": int(y.sum()), "impressions": int(len(y)), **extra},
                                                       indent=1) + "\n", encoding="utf-8")  # fmt: skip
        return extra

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        return adamw_with_warmup(self.model, hp.lr, hp.weight_decay, hp.warmup, hp.schedule,
                                 self.trainer.estimated_stepping_batches)  # fmt: skip
