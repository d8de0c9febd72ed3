"""Click-through prediction for recommendation and ads: categorical embeddings + numeric features
-> MLP -> calibrated click probability (AUC, log-loss, normalised entropy).

Torch-free: the config reads `SPEC` and `CtrConfig`; the LightningModule is in `module.py`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from experiments.core.config_group import Group
from lightning_modules.task import TaskSpec


class CtrConfig(Group):
    """The click-through model: embeddings of the categorical features + numeric features -> MLP."""

    embedding_dim: int = Field(16, ge=1, le=512, description="Size of each categorical feature's embedding.")
    hidden: list[Annotated[int, Field(ge=1)]] = Field(
        [64, 32], min_length=1, description="Hidden layer sizes of the MLP."
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout between MLP layers.")
    pos_weight: float | Literal["auto"] = Field(
        1.0, description="Loss weight of a click (auto: non-clicks / clicks of the train split)."
    )

    @field_validator("pos_weight")
    @classmethod
    def _positive(cls, v: float | str) -> float | str:
        if isinstance(v, float) and v <= 0:
            raise ValueError("must be > 0 or 'auto'")
        return v


SPEC = TaskSpec(
    name="click_through",
    description="embeddings + MLP over impression features -> calibrated click probability",
    metrics=("auc", "logloss", "ne", "loss"),
    monitor="val/auc",
    mode="max",
    final_metrics=(
        "val/auc_best",
        "val/threshold",
        "test/f1_at_threshold",
        "test/precision_at_threshold",
        "test/recall_at_threshold",
        "test/rig",
    ),
    module="lightning_modules.click_through.module:ClickThroughModule",
    serving="lightning_modules.click_through.serving",
    group="ctr",
    group_config=CtrConfig,
    text_encoder=False,
    baseline="lightning_modules.click_through.baseline:fit",
    pipeline_tag="tabular-classification",
)
