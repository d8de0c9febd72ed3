"""The one thin base of `lightning_modules/`: the training plumbing every task shares.

A task says how a batch becomes its raw output (`raw_output`), what the loss of that output is
(`loss`), how metrics are updated from it, and what it serves (`forward_batch`). This base owns the
rest: one `_step` for train/val/test, the torchmetrics objects per stage, epoch-end logging, the best
value of the task's monitor, AdamW with warmup and decay, and sparsity. The knobs that change the
loss, the training step or the learning rates act through their `TrainingHook`s (`hooks`, attached by
`experiments.config.registry.build_module`), in one place for every task.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection, MinMetric

from lightning_modules.optimization import adamw_with_warmup
from lightning_modules.task import TaskSpec

STAGES = ("train", "val", "test")


class TaskModule(pl.LightningModule):
    """Subclasses set `spec` and implement `metric_collection`, `raw_output`, `loss`,
    `update_metrics` and `forward_batch` (plus `from_config`, `prunable` and `evaluate`).

    Args:
        model: the network, built outside so that LoRA, freezing and pruning compose.
        lr, weight_decay, warmup, schedule: AdamW and its warmup/decay schedule (warmup is a fraction
            of all optimizer steps).
    """

    spec: ClassVar[TaskSpec]
    # The knobs' training hooks (`experiments.core.knob.TrainingHook`), in registry order
    hooks: list[Any] = []
    # The predictions and targets of the last val/test pass, once `keep_predictions` is called
    _kept: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] | None = None

    def __init__(
        self, model: nn.Module, lr: float, weight_decay: float, warmup: float, schedule: str
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])  # collects the subclass's own arguments too
        self.model = model
        metrics = self.metric_collection()
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.monitor_best = MaxMetric() if self.spec.mode == "max" else MinMetric()
        for stage in STAGES:  # the epoch loss on several devices (see _step)
            setattr(self, f"{stage}_loss", MeanMetric())

    # --- what a task provides ------------------------------------------------------------------
    def metric_collection(self) -> MetricCollection:
        """The task's metrics. Pass `compute_groups=False` when members share states (F1, precision and
        recall do): torchmetrics' compute groups reduce a shared state once per member under DDP."""
        raise NotImplementedError

    def raw_output(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """What the loss is computed on (logits, a standardised price, an uncalibrated logit)."""
        raise NotImplementedError

    def loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def update_metrics(
        self, metrics: MetricCollection, out: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> None:
        raise NotImplementedError

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def to_prediction(self, out: torch.Tensor) -> torch.Tensor:
        """What `forward_batch` serves, from a raw output (a price from a standardised one; by default
        the raw output itself)."""
        return out

    def epoch_values(self, values: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        """Metrics derived from an epoch's computed ones (click-through adds normalised entropy)."""
        return values

    def prunable(self) -> list[tuple[nn.Module, str]]:
        return []

    # --- shared --------------------------------------------------------------------------------
    def hooked_loss(self, out: torch.Tensor, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        """The task's loss of a raw output with every hook's `loss` applied (label smoothing, the
        teacher's soft labels on train)."""
        loss = self.loss(out, batch)
        for hook in self.hooks:
            loss = hook.loss(self, out, batch, loss, stage)
        return loss

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        outs: list[tuple[torch.Tensor, torch.Tensor]] = []

        def objective() -> torch.Tensor:
            out = self.raw_output(batch)
            loss = self.hooked_loss(out, batch, stage)
            outs.append((out, loss))
            return loss

        run = objective
        if stage == "train":  # each hook's `train_step` wraps the one before (adversarial training)
            for hook in self.hooks:
                run = functools.partial(hook.train_step, self, run)
        total = run()
        out, loss = outs[0]  # the clean pass: metrics and the logged loss are the clean ones
        self.update_metrics(getattr(self, f"{stage}_metrics"), out.detach(), batch)
        if self._kept is not None and stage in self._kept:
            self._kept[stage].append((self.to_prediction(out.detach()).float().cpu(), batch["labels"].cpu()))
        n = len(batch["labels"])
        if self.trainer.world_size > 1:
            # On several devices the epoch loss is a torchmetrics mean (weighted by batch size, reduced
            # in the epoch-end hook that every rank runs), not Lightning's sync_dist: rank 0's progress
            # bar would start that reduction alone and wait for the other ranks forever.
            getattr(self, f"{stage}_loss").update(loss.detach(), weight=n)
            if stage == "train":
                self.log("train/loss_step", loss, on_step=True, on_epoch=False)
        else:
            self.log(
                f"{stage}/loss",
                loss,
                on_step=stage == "train",
                on_epoch=True,
                prog_bar=stage != "test",
                batch_size=n,
            )
        return total

    def _log_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        metrics = getattr(self, f"{stage}_metrics")
        values = self.epoch_values(metrics.compute(), stage)
        metrics.reset()
        if self.trainer.world_size > 1:
            loss = getattr(self, f"{stage}_loss")
            values[f"{stage}/loss_epoch" if stage == "train" else f"{stage}/loss"] = loss.compute()
            loss.reset()
        self.log_dict(values)
        return values

    def keep_predictions(self) -> None:
        """From now on every val/test pass on one device in full precision keeps what `forward_batch`
        returns for each example, so that the after-training analysis (`predictions`) reads the
        pass that computed the val/test metrics instead of running the split again."""
        self._kept = {}

    def _start_keeping(self, stage: str) -> None:
        if self._kept is None:
            return
        self._kept.pop(stage, None)
        if self.trainer.world_size == 1 and str(self.trainer.precision).startswith(("32", "64")):
            self._kept[stage] = []  # on K devices a rank sees a shard; mixed precision differs from predict

    def predictions(self, dm: Any, split: str) -> tuple[Any, Any]:
        """(outputs, targets) of `forward_batch` over a whole split, as numpy arrays: the kept ones of
        the last pass when it covered the split, else a fresh pass (`evaluation.predict`)."""
        from lightning_modules.evaluation import predict

        kept = (self._kept or {}).get(split)
        if kept and sum(len(t) for _, t in kept) == len(dm.splits[split]):
            return torch.cat([o for o, _ in kept]).numpy(), torch.cat([t for _, t in kept]).numpy()
        return predict(self, getattr(dm, f"{split}_dataloader")())

    def on_validation_epoch_start(self) -> None:
        self._start_keeping("val")

    def on_test_epoch_start(self) -> None:
        self._start_keeping("test")

    def on_train_start(self) -> None:
        self.monitor_best.reset()  # forget the sanity check's values

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        values = self._log_epoch("val")
        self.monitor_best(values[self.spec.monitor])
        self.log(self.spec.best_metric, self.monitor_best.compute(), prog_bar=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def final_metrics(self) -> dict[str, float]:
        return {self.spec.best_metric: float(self.monitor_best.compute())}

    def sparsity(self) -> float:
        """Share of exact zeros in the weights this task prunes (what `prune.ratio` targets)."""
        zeros = total = 0
        for mod, name in self.prunable():
            w = getattr(mod, name)
            zeros += int((w == 0).sum())
            total += w.numel()
        return zeros / total if total else 0.0

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        scales: dict[str, float] = {}
        for hook in self.hooks:  # layer-wise lr decay
            for name, scale in hook.lr_scales(self).items():
                scales[name] = scales.get(name, 1.0) * scale
        steps = self.trainer.estimated_stepping_batches
        return adamw_with_warmup(self.model, hp.lr, hp.weight_decay, hp.warmup, hp.schedule, steps, scales)
