"""Backbone + classification head for review sentiment, rating and product category."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


class TextClassificationModule(pl.LightningModule):
    """Trains any `AutoModelForSequenceClassification` (optionally peft-wrapped).

    Logs `{train,val,test}/{loss,acc,f1,precision,recall}` (f1/precision/recall macro-averaged)
    and `val/f1_best`.

    Args:
        model: the classification model; built outside so that LoRA, freezing and pruning compose.
        num_labels: number of classes.
        lr, weight_decay, warmup, schedule: AdamW and its warmup/decay schedule (warmup is a fraction
            of all optimizer steps).
    """

    METRICS = ("acc", "f1", "precision", "recall", "loss")

    def __init__(self, model: nn.Module, num_labels: int, lr: float = 5e-5, weight_decay: float = 0.01,
                 warmup: float = 0.1, schedule: str = "linear") -> None:  # fmt: skip
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        metrics = MetricCollection({
            "acc": MulticlassAccuracy(num_labels, average="micro"),
            "f1": MulticlassF1Score(num_labels, average="macro"),
            "precision": MulticlassPrecision(num_labels, average="macro"),
            "recall": MulticlassRecall(num_labels, average="macro"),
        })  # fmt: skip
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.val_f1_best = MaxMetric()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits, batch["labels"])
        return loss, logits.argmax(dim=-1), batch["labels"]

    def on_train_start(self) -> None:
        self.val_f1_best.reset()  # forget the sanity check's values

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, preds, labels = self._step(batch)
        self.train_metrics.update(preds, labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(labels))
        return loss

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, preds, labels = self._step(batch)
        self.val_metrics.update(preds, labels)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(labels))

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values, prog_bar=False)
        self.val_f1_best(values["val/f1"])
        self.log("val/f1_best", self.val_f1_best.compute(), prog_bar=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, preds, labels = self._step(batch)
        self.test_metrics.update(preds, labels)
        self.log("test/loss", loss, on_epoch=True, batch_size=len(labels))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def configure_optimizers(self) -> dict[str, Any]:
        from transformers import (
            get_constant_schedule_with_warmup,
            get_cosine_schedule_with_warmup,
            get_linear_schedule_with_warmup,
        )

        hp = self.hparams
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if any(k in name for k in NO_DECAY) else decay).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=hp.lr,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(hp.warmup * total)
        if hp.schedule == "cosine":
            sched = get_cosine_schedule_with_warmup(optimizer, warmup, total)
        elif hp.schedule == "linear":
            sched = get_linear_schedule_with_warmup(optimizer, warmup, total)
        else:
            sched = get_constant_schedule_with_warmup(optimizer, warmup)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
