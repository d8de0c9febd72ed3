"""`model.*`: the backbone, its dropout, frozen and kept layers, and the shape of the `tiny` BERT.

Built by `lightning_modules.backbones.build_model`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from experiments.core.config_group import Group
from experiments.core.knob import Knob


class TinyBackbone(Group):
    layers: int = Field(2, ge=1, le=12, description="Transformer layers of the `tiny` backbone.")
    hidden: int = Field(128, ge=16, le=1024, description="Hidden size of the `tiny` backbone.")
    heads: int = Field(2, ge=1, le=16, description="Attention heads of the `tiny` backbone.")
    vocab_size: int = Field(
        8000, ge=50, le=100_000, description="WordPiece vocabulary built from the train split."
    )

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> TinyBackbone:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        return self


class ModelConfig(Group):
    backbone: str = Field(
        "minilm",
        description="`minilm` (bundled MiniLM-L6), `tiny` (random 2-layer BERT), or a from_pretrained id/path.",
    )
    hidden_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on hidden states.")
    attention_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on attention probabilities.")
    classifier_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before the classification head.")
    freeze_layers: int = Field(0, ge=0, description="Freeze the embeddings and the bottom N encoder layers.")
    layers: int | None = Field(
        None,
        ge=1,
        description="Keep only the bottom N encoder layers of a pretrained backbone (a smaller, faster "
        "student); None: all.",
    )
    trust_remote_code: bool = Field(
        False, description="Allow model code from the checkpoint (off by default)."
    )
    gradient_checkpointing: bool = Field(
        False,
        description="Recompute each layer's activations in the backward pass instead of keeping them: "
        "activation memory falls from every layer's to about one layer's, for about a third more compute.",
    )
    quantize: Literal["none", "nf4", "int8"] = Field(
        "none",
        description="Load the frozen base weights quantised through bitsandbytes (QLoRA: nf4 with peft.r > 0); "
        "needs a CUDA GPU.",
    )
    tiny: TinyBackbone = Field(default_factory=TinyBackbone, description="Shape of the `tiny` backbone.")

    @field_validator("backbone")
    @classmethod
    def _backbone_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    m, t = cfg.model, cfg.trainer
    if m.quantize != "none" and (not spec.text_encoder or m.backbone == "tiny"):
        yield f"model.quantize: task {cfg.task!r} with backbone {m.backbone!r} has no pretrained weights to quantise; use none"
    elif m.quantize != "none" and t.accelerator in ("cpu", "mps"):
        yield (
            f"model.quantize: {m.quantize} base weights load through bitsandbytes' CUDA kernels, and "
            f"trainer.accelerator is {t.accelerator}: on a CPU train LoRA (peft.r) on full-precision weights, "
            "with model.gradient_checkpointing and a shorter data.max_length to save memory; use none"
        )
    elif m.quantize == "nf4" and not cfg.peft.r:
        yield "model.quantize: nf4 weights cannot be fine-tuned themselves (QLoRA trains LoRA adapters on them); set peft.r"
    if m.gradient_checkpointing and not spec.text_encoder:
        yield f"model.gradient_checkpointing: task {cfg.task!r} has no transformer to checkpoint; use false"
    if cfg.model.layers is not None and not spec.text_encoder:
        yield f"model.layers: task {cfg.task!r} has no transformer"
    elif cfg.model.layers is not None and cfg.model.backbone == "tiny":
        yield "model.layers: the `tiny` backbone is built with model.tiny.layers; use that"


KNOB = Knob("model", ModelConfig, "The backbone and how much of it trains.", refuse=_refuse)
