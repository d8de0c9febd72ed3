"""The knobs every task with a model reads: backbone and dropout, LoRA, the optimizer, pruning,
compression, distillation and adversarial training.

Torch-free (pydantic only), so the config and `ecomlab config` read them without importing torch.
A knob that changes the loss or the training step is implemented once, in `task_module.TaskModule`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from experiments.core.config_group import Group


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
        None, ge=1,
        description="Keep only the bottom N encoder layers of a pretrained backbone (a smaller, faster student); "
        "None: all.",
    )  # fmt: skip
    trust_remote_code: bool = Field(
        False, description="Allow model code from the checkpoint (off by default)."
    )
    tiny: TinyBackbone = Field(default_factory=TinyBackbone, description="Shape of the `tiny` backbone.")

    @field_validator("backbone")
    @classmethod
    def _backbone_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


class PeftConfig(Group):
    r: int = Field(0, ge=0, description="LoRA rank; 0 means full fine-tuning.")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling alpha.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: list[str] = Field(
        ["query", "value"], min_length=1, description="Modules that get adapters."
    )


class OptimConfig(Group):
    lr: float = Field(5e-5, gt=0, le=1, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0, le=1, description="AdamW weight decay (not on biases/LayerNorm).")
    warmup: float = Field(0.1, ge=0, lt=1, description="Warmup as a fraction of total optimizer steps.")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="Decay after warmup.")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the gradient norm (None: no clipping).")
    layer_decay: float = Field(
        1.0, gt=0, le=1,
        description="Layer-wise lr decay: each encoder layer's lr is the one above's times this (head: lr, "
        "embeddings lowest); 1.0: off.",
    )  # fmt: skip
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy (classification tasks)."
    )


class PruneConfig(Group):
    ratio: float = Field(
        0.0, ge=0, lt=1, description="Target share of zeros in the encoder's Linear weights."
    )
    epochs: int = Field(
        1, ge=1, description="Reach the ratio linearly over this many epochs (pruning at epoch start)."
    )
    ffn: float = Field(
        0.0, ge=0, lt=1,
        description="Share of each encoder layer's FFN neurons removed before fine-tuning (lowest L1 first); "
        "the saved model is smaller.",
    )  # fmt: skip
    heads: float = Field(
        0.0, ge=0, lt=1,
        description="Share of each encoder layer's attention heads removed before fine-tuning (lowest L1 of "
        "their query/key/value rows and output columns first).",
    )  # fmt: skip


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


class AdversarialConfig(Group):
    """Adversarial training on the word embeddings (FGM: Miyato et al. 2017; PGD: Madry et al. 2018)."""

    method: Literal["none", "fgm", "pgd"] = Field(
        "none",
        description="Perturb the word embeddings along the loss gradient each training step; none: off.",
    )
    epsilon: float = Field(
        0.01, gt=0, le=1,
        description="Size of the perturbation as a share of the example's word-embedding norm (L2 over all "
        "its tokens); PGD's ball radius.",
    )  # fmt: skip
    steps: int = Field(3, ge=1, le=20, description="PGD: gradient-ascent steps per training step.")
    alpha: float = Field(0.004, gt=0, le=1, description="PGD: size of each step, as a share of that norm.")
    weight: float = Field(
        1.0, gt=0, le=10, description="Weight of the loss on the perturbed input, added to the clean loss."
    )


class CompressConfig(Group):
    int8: bool = Field(
        False,
        description="Final metrics and latency of the dynamic-int8 model (CPU, one device); fp32's kept as fp32/*.",
    )
