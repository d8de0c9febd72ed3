"""Price regression: product text plus numeric features -> price (RMSE, MAE, MAPE, R²).

Torch-free: the config reads `SPEC` and `HeadConfig`; the LightningModule is in `module.py`.
"""

from __future__ import annotations

from pydantic import Field

from experiments.core.config_group import Group
from lightning_modules.task import TaskSpec


class HeadConfig(Group):
    """The head on top of the encoder for tasks with numeric inputs (price regression)."""

    text_dim: int = Field(32, ge=1, le=1024, description="Size of the text vector the encoder's head emits.")
    hidden: int = Field(
        64, ge=1, le=4096, description="Hidden units of the MLP over [text vector, features]."
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout inside the MLP.")


SPEC = TaskSpec(
    name="price_regression",
    description="encoder text vector + numeric features -> MLP -> (log) price",
    metrics=("rmse", "mae", "mape", "r2", "loss"),
    monitor="val/rmse",
    mode="min",
    final_metrics=("val/rmse_best",),
    module="lightning_modules.price_regression.module:PriceRegressionModule",
    serving="lightning_modules.price_regression.serving",
    group="head",
    group_config=HeadConfig,
    baseline="lightning_modules.price_regression.baseline:fit",
    pipeline_tag="tabular-regression",
)
