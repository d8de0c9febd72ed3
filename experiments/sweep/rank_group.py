"""A sweep worker on K devices: K rank processes that run one Optuna trial at a time, together.

`ecomlab sweep` starts the K processes of a worker itself, with the environment torchrun gives
(RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT), so
Lightning's DDP strategy uses them as they are instead of re-launching the command line. The group's
process group is opened once, before the first trial, and Lightning reuses it for every trial.

- Rank 0 claims and asks the trial; every rank samples it through optuna-integration's
  `TorchDistributedTrial`, so all ranks get rank 0's parameters, config and experiment id.
- Pruning is decided on rank 0 from the reduced metric and broadcast (`DistributedPruning`); every
  rank stops at the same epoch and raises `TrialPruned` after `fit`, so the trial ends PRUNED.
- A failure inside a trial on any rank ends the group: that rank marks the trial FAIL with its
  reason and exits with `worker.GROUP_RESTART`; the monitor stops the other ranks (which may be waiting in
  a collective) and starts a fresh group. A rank that hangs without dying is bounded by the process
  group's timeout, `faults.rank_timeout`.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import optuna
import torch
import torch.distributed as dist
from optuna_integration import PyTorchLightningPruningCallback


@dataclass(frozen=True)
class RankGroup:
    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> RankGroup:
        """This process's place in its worker's group (a group of one outside `ecomlab sweep`)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(rank=int(os.environ.get("RANK", "0")) if world > 1 else 0, world=world)

    @property
    def primary(self) -> bool:
        return self.rank == 0

    def open(self, timeout_s: int) -> None:
        """The group's process group (gloo on CPU; NCCL for CUDA tensors where there is a GPU), with
        a timeout on every collective."""
        if self.world == 1 or dist.is_initialized():
            return
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))

    def share(self, obj: Any = None) -> Any:
        """Rank 0's `obj` on every rank (one broadcast; a group of one returns it as is)."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


class DistributedPruning(PyTorchLightningPruningCallback):
    """optuna-integration's Lightning pruning callback, reporting every validation (not every epoch)
    and working for ranks started outside Lightning.

    Each validation is one report to the pruner at step = the validations so far: once an epoch by
    default, several with `trainer.val_check_interval`, so a one-epoch trial can still be pruned (the
    stock callback reports at step = epoch, so a second validation in the same epoch would be lost).
    Under DDP the stock callback needs the trial on every rank and reads the pruned flag back from
    storage in `check_pruned()`, which races with rank 0 writing it when the ranks are separate
    processes. Here only rank 0 holds the trial (`trial=None` elsewhere); it reports the reduced metric
    and decides; the decision is broadcast through Lightning's strategy, kept on every rank, and
    `check_pruned()` raises `TrialPruned` on every rank alike.
    """

    def __init__(self, trial: optuna.trial.Trial | None, monitor: str, sign: float = 1.0) -> None:
        super().__init__(trial, monitor)  # type: ignore[arg-type]
        self.sign = sign  # -1: the monitor goes the other way from the study (`pruner.metric`)
        self.pruned_at: int | None = None
        self.validations = 0

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.is_ddp_backend = trainer.world_size > 1
        if self._trial is None and not self.is_ddp_backend:
            raise ValueError("DistributedPruning needs the trial on a single device")

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        step, self.validations = self.validations, self.validations + 1
        prune = False
        if trainer.is_global_zero:
            score = trainer.callback_metrics.get(self.monitor)
            if score is not None:  # on K devices reduced over the ranks: every val example once
                self._trial.report(self.sign * float(score), step=step)
                prune = self._trial.should_prune()
        if not self.is_ddp_backend:
            if prune:
                raise optuna.TrialPruned(
                    f"Trial was pruned at validation {step} (epoch {pl_module.current_epoch})."
                )
            return
        if trainer.strategy.broadcast(prune, src=0):
            trainer.should_stop = True
            self.pruned_at = step

    def on_fold_end(self, fold: int, per_fold: list[dict[str, Any]]) -> None:
        """Cross-validation (`eval.folds`): report the mean of the monitor over the folds so far at
        step = fold, and stop the trial there if the pruner says so (folds run on one device)."""
        values = [m[self.monitor] for m in per_fold if self.monitor in m]
        if not values:
            return
        self._trial.report(self.sign * sum(values) / len(values), step=fold)
        if self._trial.should_prune():
            raise optuna.TrialPruned(f"Trial was pruned after fold {fold}.")

    def check_pruned(self) -> None:
        if self.pruned_at is not None:
            raise optuna.TrialPruned(f"Trial was pruned at validation {self.pruned_at}.")
