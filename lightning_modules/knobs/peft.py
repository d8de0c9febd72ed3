"""`peft.*`: LoRA adapters on the backbone (peft), applied by `lightning_modules.backbones`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from experiments.core.config_group import Group
from experiments.core.knob import Knob


class PeftConfig(Group):
    r: int = Field(0, ge=0, description="LoRA rank; 0 means full fine-tuning.")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling alpha.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: list[str] = Field(
        ["query", "value"],
        min_length=1,
        description="Modules that get adapters; at this default, peft's defaults for the architecture when it "
        "has no query/value (decoders: q_proj, v_proj); [all-linear]: every linear layer but the head.",
    )
    use_dora: bool = Field(False, description="DoRA: weight-decomposed LoRA (peft's use_dora).")
    use_rslora: bool = Field(
        False, description="rsLoRA: scale the adapters by alpha / sqrt(r) (peft's use_rslora)."
    )


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    if not spec.text_encoder and cfg.peft.r:
        yield f"peft.r: task {cfg.task!r} has no transformer to put LoRA adapters on; use 0"


KNOB = Knob("peft", PeftConfig, "LoRA adapters instead of full fine-tuning.", refuse=_refuse)
