"""Global L1 magnitude pruning of the encoder's Linear weights, ramped up over epochs.

Lightning's ModelPruning does the work (global unstructured L1, permanent in every checkpoint and at
the end of training). It prunes at the *end* of an epoch, after validation, so a checkpoint chosen by
that validation would not match its weights; this subclass prunes at the *start* of each epoch
instead, so every epoch fine-tunes the pruned network and validation measures what is saved.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelPruning


def incremental_amounts(ratio: float, epochs: int) -> list[float]:
    """Per-epoch amounts that take the pruned share linearly to `ratio` over `epochs` epochs.

    torch's iterative pruning applies each amount to the weights still unpruned, so step k prunes
    (s_k - s_{k-1}) / (1 - s_{k-1}) of what remains.
    """
    out, prev = [], 0.0
    for k in range(1, epochs + 1):
        target = ratio * k / epochs
        out.append((target - prev) / (1 - prev))
        prev = target
    return out


class ScheduledPruning(ModelPruning):
    """ModelPruning that reaches `ratio` zeros linearly over `epochs` epochs, pruning at epoch start."""

    def __init__(self, parameters: list[tuple[Any, str]], ratio: float, epochs: int) -> None:
        self.amounts = incremental_amounts(ratio, epochs)
        super().__init__(
            pruning_fn="l1_unstructured",
            parameters_to_prune=parameters,
            amount=lambda epoch: self.amounts[epoch] if epoch < len(self.amounts) else 0.0,
            use_global_unstructured=True,
            make_pruning_permanent=True,
            verbose=0,
        )

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._run_pruning(trainer.current_epoch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass  # pruning happens at epoch start (see module docstring)
