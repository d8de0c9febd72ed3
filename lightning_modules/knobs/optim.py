"""`optim.*`: AdamW with warmup and decay, layer-wise lr decay and label smoothing.

The optimizer itself is `lightning_modules.optimization.adamw_with_warmup`; this knob's hook gives
each layer its decayed lr and smooths the labels of a classification loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from experiments.core.config_group import Group
from experiments.core.knob import Knob, TrainingHook


class OptimConfig(Group):
    lr: float = Field(5e-5, gt=0, le=1, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0, le=1, description="AdamW weight decay (not on biases/LayerNorm).")
    warmup: float = Field(0.1, ge=0, lt=1, description="Warmup as a fraction of total optimizer steps.")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="Decay after warmup.")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the gradient norm (None: no clipping).")
    layer_decay: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Layer-wise lr decay: each encoder layer's lr is the one above's times this (head: lr, "
        "embeddings lowest); 1.0: off.",
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy (classification tasks)."
    )


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    if cfg.optim.layer_decay != 1.0 and not spec.text_encoder:
        yield f"optim.layer_decay: task {cfg.task!r} has no text encoder with layers to decay the lr over; use 1.0"
    if cfg.optim.label_smoothing and not spec.class_logits:
        yield (
            f"optim.label_smoothing: task {cfg.task!r} has no class logits to smooth the labels of (its loss "
            "is not a softmax cross-entropy); use 0"
        )


class OptimHook(TrainingHook):
    """Label smoothing (the cross-entropy of class logits against smoothed labels, at every stage, so
    val/loss is the loss that is minimised) and layer-wise lr decay (a parameter at depth d of
    `backbones.layer_depths` trains at `lr * layer_decay ** (top - d)`)."""

    def __init__(self, optim: OptimConfig) -> None:
        self.label_smoothing = optim.label_smoothing
        self.layer_decay = optim.layer_decay

    def loss(self, module: Any, out: Any, batch: dict[str, Any], loss: Any, stage: str) -> Any:
        if not self.label_smoothing:
            return loss
        import torch.nn.functional as F

        return F.cross_entropy(out, batch["labels"], label_smoothing=self.label_smoothing)

    def lr_scales(self, module: Any) -> dict[str, float]:
        if self.layer_decay == 1.0:
            return {}
        from lightning_modules.backbones import layer_depths

        depths, top = layer_depths(module.model)
        return {
            name: self.layer_decay ** (top - depths.get(name, top))
            for name, _ in module.model.named_parameters()
        }


def _hook(cfg: Any) -> OptimHook | None:
    o = cfg.optim
    return OptimHook(o) if o.label_smoothing or o.layer_decay != 1.0 else None


KNOB = Knob(
    "optim", OptimConfig, "The optimizer, its schedule and its regularisers.", refuse=_refuse, hook=_hook
)
