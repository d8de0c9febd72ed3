"""`prune.*`: magnitude pruning ramped over epochs (`experiments.run.pruning`), and structured
removal of FFN neurons and attention heads before fine-tuning (`lightning_modules.backbones`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from experiments.core.config_group import Group
from experiments.core.knob import Knob


class PruneConfig(Group):
    ratio: float = Field(
        0.0, ge=0, lt=1, description="Target share of zeros in the encoder's Linear weights."
    )
    epochs: int = Field(
        1, ge=1, description="Reach the ratio linearly over this many epochs (pruning at epoch start)."
    )
    ffn: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of each encoder layer's FFN neurons removed before fine-tuning (lowest L1 first); "
        "the saved model is smaller.",
    )
    heads: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of each encoder layer's attention heads removed before fine-tuning (lowest L1 of "
        "their query/key/value rows and output columns first).",
    )


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    if spec.text_encoder:
        return
    if cfg.prune.ffn:
        yield f"prune.ffn: task {cfg.task!r} has no transformer FFN to prune; use 0 (prune.ratio prunes its MLP)"
    if cfg.prune.heads:
        yield f"prune.heads: task {cfg.task!r} has no attention heads to prune; use 0"


KNOB = Knob("prune", PruneConfig, "Unstructured and structured pruning.", refuse=_refuse)
