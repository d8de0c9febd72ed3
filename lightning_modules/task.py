"""What a task declares (a torch-free `TaskSpec`) and what the runner calls on it (`TaskModule`).

Each task is one package `lightning_modules/<task>/`: its `__init__.py` holds the `SPEC` and the
config group only that task has, importing nothing heavy, so `experiments/config/` can build the
config from the registry without torch; its `module.py` holds the LightningModule (a subclass of
`task_module.TaskModule`, which owns the training plumbing every task shares).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True)
class TaskSpec:
    """Everything the runner and the config know about a task, declared once in its package.

    Args:
        name: the config's `task` value.
        description: one line for `ecomlab datasets` and the docs.
        metrics: logged as `train/`, `val/` and `test/<name>` every epoch.
        monitor: the default `trainer.monitor` (one of `val/<metrics>`), with `mode`.
        final_metrics: computed once after training (in metrics.json; sweeps may target them).
        module: `package.module:Class` of the LightningModule, imported only when a run builds it.
        group: a top-level config group only this task has (`head`, `ctr`), with its class.
        text_encoder: whether the model has a transformer (the `model`/`peft` knobs and the
            backbone asset apply; anomaly scoring can reuse it).
        serving: the module with `export`, `load` and `quality` (see `lightning_modules/served.py`):
            how `ecomlab export` writes the trained model and `ecomlab serve` answers with it.
        class_logits: the raw output is one logit per class (softmax), so a student can learn a
            teacher's soft labels (`distill.*`).
        baseline: `package.module:function` fitting the task's cheap baseline on a DataModule
            (`fit(dm, cfg) -> {"name", "metrics": {val/*, test/*}, "settings", "trivial"}`), which
            studies, runs and reports show beside the models (`experiments/run/baseline.py`).
        pipeline_tag: the Hugging Face model-card tag of an exported model.
        zero_shot: `package.module:function` scoring an instruct decoder prompted with no training
            (`fit(dm, cfg)`, the baseline's shape), shown beside the baseline when the backbone is one.
    """

    name: str
    description: str
    metrics: tuple[str, ...]
    monitor: str
    mode: Literal["max", "min"]
    final_metrics: tuple[str, ...]
    module: str
    group: str | None = None
    group_config: type[BaseModel] | None = None
    text_encoder: bool = True
    serving: str | None = None
    class_logits: bool = False
    baseline: str | None = None
    pipeline_tag: str = "other"
    zero_shot: str | None = None

    @property
    def best_metric(self) -> str:
        """`val/<monitor>_best`: the best value of the default monitor over the epochs."""
        return f"{self.monitor}_best"

    def module_class(self) -> type[TaskModule]:
        return pkgutil.resolve_name(self.module)

    def baseline_fit(self) -> Any:
        return pkgutil.resolve_name(self.baseline) if self.baseline else None

    def zero_shot_fit(self) -> Any:
        return pkgutil.resolve_name(self.zero_shot) if self.zero_shot else None

    def serving_module(self) -> Any:
        return importlib.import_module(self.serving) if self.serving else None


class TaskModule(Protocol):
    """What `train()`, `reproduce`, `anomaly` and the tests call on a task's LightningModule."""

    model: Any

    @classmethod
    def from_config(cls, cfg: Any, dm: Any) -> TaskModule:
        """Build the model (backbone, LoRA, freezing, heads) and the module around it."""

    hooks: list[Any]
    """The training hooks of the knobs a config turns on (`experiments.core.knob.TrainingHook`)."""

    def forward_batch(self, batch: dict[str, Any]) -> Any:
        """The served output of a batch (logits, a price, a calibrated click logit)."""

    def prunable(self) -> list[tuple[Any, str]]:
        """(module, parameter name) pairs that `prune.ratio` applies to and `model/sparsity` measures."""

    def sparsity(self) -> float:
        """Share of exact zeros in `prunable()`."""

    def final_metrics(self) -> dict[str, float]:
        """Metrics known only after training (the best monitored value)."""

    def evaluate(self, dm: Any, out: Path) -> dict[str, float]:
        """After-training evaluation files in the run record (PNGs, per-class report) and metrics."""
