"""Backbone + classification head for review sentiment, rating and product category."""

from __future__ import annotations

import json
from pathlib import Path
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

from lightning_modules.optimization import adamw_with_warmup


class TextClassificationModule(pl.LightningModule):
    """Trains any `AutoModelForSequenceClassification` (optionally peft-wrapped).

    Logs `{train,val,test}/{loss,acc,acc_top3,f1,precision,recall}` (f1/precision/recall
    macro-averaged; acc_top3 is 1.0 by definition with three or fewer classes) and `val/f1_best`.
    After training, `evaluate` writes the test confusion matrix and a per-class report into the run
    record and, for two classes, picks the decision threshold on validation and reports it on test.

    Args:
        model: the classification model; built outside so that LoRA, freezing and pruning compose.
        num_labels: number of classes.
        lr, weight_decay, warmup, schedule: AdamW and its warmup/decay schedule (warmup is a fraction
            of all optimizer steps).
    """

    name = "text_classification"
    METRICS = ("acc", "acc_top3", "f1", "precision", "recall", "loss")

    def __init__(self, model: nn.Module, num_labels: int, lr: float = 5e-5, weight_decay: float = 0.01,
                 warmup: float = 0.1, schedule: str = "linear") -> None:  # fmt: skip
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        metrics = MetricCollection({
            "acc": MulticlassAccuracy(num_labels, average="micro"),
            "acc_top3": MulticlassAccuracy(num_labels, average="micro", top_k=min(3, num_labels)),
            "f1": MulticlassF1Score(num_labels, average="macro"),
            "precision": MulticlassPrecision(num_labels, average="macro"),
            "recall": MulticlassRecall(num_labels, average="macro"),
        })  # fmt: skip
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.val_f1_best = MaxMetric()

    @classmethod
    def from_config(cls, cfg: Any, dm: Any) -> TextClassificationModule:
        """The backbone (with dropout, freezing and LoRA from `cfg`) plus this module around it."""
        from experiments import backbones

        model = backbones.build_model(cfg, len(dm.label_names), dm.tokenizer, dm.label_names)
        o = cfg.optim
        return cls(model, len(dm.label_names), lr=o.lr, weight_decay=o.weight_decay, warmup=o.warmup,
                   schedule=o.schedule)  # fmt: skip

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self(batch["input_ids"], batch["attention_mask"])

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.forward_batch(batch)
        loss = F.cross_entropy(logits, batch["labels"])
        return loss, logits, batch["labels"]

    def on_train_start(self) -> None:
        self.val_f1_best.reset()  # forget the sanity check's values

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, logits, labels = self._step(batch)
        self.train_metrics.update(logits, labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(labels))
        return loss

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, logits, labels = self._step(batch)
        self.val_metrics.update(logits, labels)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(labels))

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values, prog_bar=False)
        self.val_f1_best(values["val/f1"])
        self.log("val/f1_best", self.val_f1_best.compute(), prog_bar=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, logits, labels = self._step(batch)
        self.test_metrics.update(logits, labels)
        self.log("test/loss", loss, on_epoch=True, batch_size=len(labels))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def prunable(self) -> list[tuple[nn.Module, str]]:
        """The Linear weights that `prune.ratio` applies to: the encoder blocks' (adapters excluded)."""
        from experiments.backbones import prunable_linears

        return prunable_linears(self.model)

    def final_metrics(self) -> dict[str, float]:
        return {"val/f1_best": float(self.val_f1_best.compute())}

    def evaluate(self, dm: Any, out: Path) -> dict[str, float]:
        """Confusion matrix PNG and per-class report of the test split; the val-chosen threshold for
        two classes. Returns the extra metrics for metrics.json."""
        from sklearn.metrics import accuracy_score, classification_report, f1_score

        from lightning_modules.evaluation import best_threshold, predict, save_confusion_matrix

        names = list(dm.label_names)
        logits, labels = predict(self, dm.test_dataloader())
        preds = logits.argmax(axis=1)
        extra: dict[str, float] = {}
        if len(names) == 2:
            val_logits, val_labels = predict(self, dm.val_dataloader())
            threshold = best_threshold(torch.softmax(torch.as_tensor(val_logits), 1)[:, 1].numpy(), val_labels)
            preds = (torch.softmax(torch.as_tensor(logits), 1)[:, 1].numpy() >= threshold).astype(int)
            extra = {"val/threshold": threshold, "test/f1_at_threshold": float(f1_score(labels, preds, average="macro")),
                     "test/acc_at_threshold": float(accuracy_score(labels, preds))}  # fmt: skip
        save_confusion_matrix(labels, preds, names, out / "confusion_matrix.png",
                              "test confusion matrix" + (" (threshold chosen on val)" if len(names) == 2 else ""))  # fmt: skip
        report = classification_report(labels, preds, labels=list(range(len(names))), target_names=names,
                                       output_dict=True, zero_division=0)  # fmt: skip
        (out / "per_class.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        return extra

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        return adamw_with_warmup(self.model, hp.lr, hp.weight_decay, hp.warmup, hp.schedule,
                                 self.trainer.estimated_stepping_batches)  # fmt: skip
