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

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import BinaryAUROC

from lightning_modules.click_through import SPEC
from lightning_modules.click_through.model import CtrModel, binary_entropy
from lightning_modules.task_module import TaskModule


class ClickThroughModule(TaskModule):
    """Logs `{train,val,test}/{loss,auc,logloss,ne}` and `val/auc_best`."""

    spec = SPEC

    def __init__(
        self,
        model: CtrModel,
        base_ctr: float,
        pos_weight: float = 1.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup: float = 0.0,
        schedule: str = "constant",
    ) -> None:
        super().__init__(model, lr, weight_decay, warmup, schedule)
        self.base_entropy = binary_entropy(base_ctr)

    def metric_collection(self) -> MetricCollection:
        return MetricCollection({"auc": BinaryAUROC(), "logloss": MeanMetric()})

    @classmethod
    def from_config(cls, cfg: Any, dm: Any) -> ClickThroughModule:
        meta, c = dm.meta, cfg.ctr
        labels = dm.splits["train"].labels
        clicks = int(labels.sum())
        pos_weight = (
            (len(labels) - clicks) / max(1, clicks) if c.pos_weight == "auto" else float(c.pos_weight)
        )
        model = CtrModel(
            meta["cardinalities"],
            len(meta["numeric"]),
            c.embedding_dim,
            c.hidden,
            c.dropout,
            meta["numeric_mean"],
            meta["numeric_std"],
            math.log(meta["negative_sampling"]) - math.log(pos_weight),
        )
        o = cfg.optim
        return cls(
            model,
            meta["base_ctr"],
            pos_weight=pos_weight,
            lr=o.lr,
            weight_decay=o.weight_decay,
            warmup=o.warmup,
            schedule=o.schedule,
        )

    def raw_output(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training logit (on the negative-sampled, click-weighted distribution)."""
        return self.model(batch["categorical"], batch["numeric"])

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The calibrated click logit."""
        return self.to_prediction(self.raw_output(batch))

    def to_prediction(self, out: torch.Tensor) -> torch.Tensor:
        return self.model.calibrated(out)

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        y = batch["labels"].float()
        weight = torch.where(y > 0, torch.full_like(y, self.hparams.pos_weight), torch.ones_like(y))
        return F.binary_cross_entropy_with_logits(out, y, weight=weight)

    def update_metrics(
        self, metrics: MetricCollection, out: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> None:
        calibrated = self.model.calibrated(out)
        metrics["auc"].update(torch.sigmoid(calibrated), batch["labels"])
        metrics["logloss"].update(
            F.binary_cross_entropy_with_logits(calibrated, batch["labels"].float(), reduction="none")
        )

    def epoch_values(self, values: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        values[f"{stage}/ne"] = values[f"{stage}/logloss"] / self.base_entropy
        return values

    def prunable(self) -> list[tuple[nn.Module, str]]:
        """The MLP's Linear weights (the embeddings are lookup tables, not pruned)."""
        return [(m, "weight") for m in self.model.mlp if isinstance(m, nn.Linear)]

    def evaluate(self, dm: Any, out: Path) -> dict[str, float]:
        """Threshold on val (best F1), its test precision/recall/F1, the test RIG, confusion matrix PNG."""
        from sklearn.metrics import f1_score, log_loss, precision_score, recall_score

        from lightning_modules.evaluation import best_threshold, save_confusion_matrix

        val_logit, val_y = self.predictions(dm, "val")
        logit, y = self.predictions(dm, "test")
        p_val, p = (
            torch.sigmoid(torch.as_tensor(val_logit)).numpy(),
            torch.sigmoid(torch.as_tensor(logit)).numpy(),
        )
        threshold = best_threshold(p_val, val_y)
        preds = (p >= threshold).astype(int)
        save_confusion_matrix(
            y,
            preds,
            ["no_click", "click"],
            out / "confusion_matrix.png",
            "test confusion matrix (threshold chosen on val)",
        )
        extra = {
            "val/threshold": threshold,
            "test/f1_at_threshold": float(f1_score(y, preds, zero_division=0)),
            "test/precision_at_threshold": float(precision_score(y, preds, zero_division=0)),
            "test/recall_at_threshold": float(recall_score(y, preds, zero_division=0)),
            "test/rig": 1.0 - float(log_loss(y, p, labels=[0, 1])) / self.base_entropy,
        }
        (out / "per_class.json").write_text(
            json.dumps({"clicks": int(y.sum()), "impressions": int(len(y)), **extra}, indent=1) + "\n",
            encoding="utf-8",
        )
        return extra
