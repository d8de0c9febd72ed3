"""`distill.*`: a student learns a finished run's soft labels (Hinton et al., 2015).

The teacher's logits ride in the train batches (`experiments.run.teacher` computes and caches them);
this knob's hook mixes the distillation term into the training loss
(`lightning_modules.distillation.Distillation`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import Field, field_validator

from experiments.core.config_group import Group
from experiments.core.knob import Knob, TrainingHook


class DistillConfig(Group):
    teacher: str | None = Field(
        None,
        description="Experiment id of a finished run (same task and data) whose soft labels the student "
        "learns from; None: off.",
    )
    alpha: float = Field(
        0.5, ge=0, le=1, description="Weight of the distillation term (1 - alpha on the labels)."
    )
    temperature: float = Field(
        2.0,
        gt=0,
        le=100,
        description="Softmax temperature of teacher and student; the KL term is scaled by T^2.",
    )

    @field_validator("teacher")
    @classmethod
    def _an_experiment_id(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9a-f]{12}", v):
            raise ValueError("must be an experiment id (12 lowercase hex digits)")
        return v


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    if cfg.distill.teacher is not None and not spec.class_logits:
        yield (
            f"distill.teacher: task {cfg.task!r} has no class logits to learn soft labels from (distillation "
            "is for the tasks with class logits)"
        )


class DistillHook(TrainingHook):
    """On train batches that carry the teacher's logits: `alpha * T^2 * KL + (1 - alpha) * label loss`."""

    def __init__(self, d: DistillConfig) -> None:
        from lightning_modules.distillation import Distillation

        self.distillation = Distillation(d.alpha, d.temperature)

    def loss(self, module: Any, out: Any, batch: dict[str, Any], loss: Any, stage: str) -> Any:
        from lightning_modules.distillation import TEACHER_LOGITS

        if stage != "train" or TEACHER_LOGITS not in batch:
            return loss
        return self.distillation.loss(out, batch[TEACHER_LOGITS], loss)


def _hook(cfg: Any) -> DistillHook | None:
    return DistillHook(cfg.distill) if cfg.distill.teacher is not None else None


KNOB = Knob(
    "distill", DistillConfig, "Knowledge distillation from a finished run.", refuse=_refuse, hook=_hook
)
