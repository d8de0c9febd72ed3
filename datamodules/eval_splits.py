"""`eval.*`: how a run's model is evaluated. `eval.folds: K` is k-fold cross-validation: stratified
folds of train+val with test held out (`TextClassificationDataModule.fold` cuts them,
`experiments.run.folds` trains one model per fold)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from experiments.core.config_group import Group
from experiments.core.knob import Knob


class EvalConfig(Group):
    val_subset: float | int | None = Field(
        None,
        gt=0,
        description="Validations inside an epoch (trainer.val_check_interval) use a fixed, seeded subset of "
        "val: a fraction of it, or a number of examples; the last validation of each epoch always uses all "
        "of it. None: all of it every time.",
    )
    folds: int = Field(
        1,
        ge=1,
        le=20,
        description="k-fold cross-validation: stratified folds of train+val (test held out), one model per "
        "fold, metrics the mean (and _std); 1: the single split.",
    )


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    subset = cfg.eval.val_subset
    if subset is not None and cfg.trainer.val_check_interval is None:
        yield "eval.val_subset: only validations inside an epoch use the subset; set trainer.val_check_interval"
    if isinstance(subset, float) and subset >= 1:
        yield f"eval.val_subset: a fraction of val is below 1.0 (got {subset}); give a number of examples instead"
    if cfg.eval.folds == 1:
        return
    if not spec.text_encoder:
        yield (
            f"eval.folds: task {cfg.task!r} splits its log by the data set's own rule; cross-validation is for "
            "the text tasks; use 1"
        )
    if cfg.trainer.devices * cfg.trainer.num_nodes > 1:
        yield (
            "eval.folds: cross-validation trains its folds on one device; use trainer.devices 1 (it is for "
            "small data sets, where several devices do not pay)"
        )
    if cfg.distill.teacher is not None:
        yield (
            "eval.folds: each fold trains on another part of train+val than the teacher's train split, so "
            "distill.teacher cannot give its soft labels; use one or the other"
        )


KNOB = Knob("eval", EvalConfig, "How the model is evaluated: the split, or k folds.", refuse=_refuse)
