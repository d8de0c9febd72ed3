"""The one thin base of the data-set declarations: a data set is its config class.

Each `datamodules/<dataset>.py` holds one subclass of `DatasetConfig` that says everything about the
data set: its config keys (pydantic fields, validated with the rest of the experiment config), the
tasks it serves and what they predict, its `ecomlab datasets` row, the assets it needs, where its
files are and how to read them, and which LightningDataModule prepares it. The modules import
neither torch nor pandas at import time, so the config and `ecomlab --help` stay fast; the
DataModules (text, price, click-log) do the heavy work identically for every data set of a kind.
"""

from __future__ import annotations

import json
import math
import pkgutil
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from datamodules.cleaning import RawExamples
from experiments.core.config_group import Group

TEXT_DATAMODULE = "datamodules.text_classification_data:TextClassificationDataModule"
PRICE_DATAMODULE = "datamodules.price_data:PriceDataModule"
CLICK_LOG_DATAMODULE = "datamodules.click_log_data:ClickLogDataModule"


class DatasetConfig(Group):
    """Keys every data set has; subclasses add theirs, a `dataset: Literal[...]` tag and the ClassVars.

    ClassVars a data set declares:
        tasks: the tasks that can train on it (a task's name, as in `lightning_modules/`).
        targets: what it predicts, for `ecomlab datasets`.
        size: its size as shipped, for `ecomlab datasets`.
        language: `en`, `zh`, `any`, or `-` for tabular data.
        assets: the assets (experiments/core/assets.py) its files come from.
        datamodule: `module:Class` of the LightningDataModule that prepares it.
    """

    tasks: ClassVar[tuple[str, ...]]
    targets: ClassVar[str]
    size: ClassVar[str]
    language: ClassVar[str]
    assets: ClassVar[tuple[str, ...]] = ()
    datamodule: ClassVar[str] = TEXT_DATAMODULE
    # only exact duplicate rows are dropped (one text at two prices is two observations)
    duplicates_by_label: ClassVar[bool] = False

    max_length: int = Field(128, ge=8, le=4096, description="Tokens per text; longer texts are truncated.")
    batch_size: int = Field(32, ge=1, description="Examples per training batch.")
    eval_batch_size: int | None = Field(
        None, ge=1, description="Examples per val/test batch (default 2x batch_size)."
    )
    subsample: int | None = Field(
        None, ge=10, description="Keep N cleaned examples (stratified) for quick runs."
    )
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="Share of examples for validation.")
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="Share of examples for test.")
    split_seed: int = Field(0, description="Seed of the deterministic stratified split (and of subsampling).")
    drop_duplicates: bool = Field(
        True, description="Drop exact duplicate texts (keep the first) before splitting."
    )
    drop_conflicts: bool = Field(True, description="Drop every copy of a text that appears under two labels.")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")

    # --- what a data set provides ------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.dataset  # type: ignore[attr-defined]  (each subclass's Literal tag)

    @property
    def source_name(self) -> str:
        """How the cleaning report and errors name the source."""
        return self.name

    def source_files(self) -> list[Path]:
        """The files the rows come from (fetched if they are an asset)."""
        raise NotImplementedError

    def read(self, files: list[Path]) -> RawExamples:
        """Rows of `files` (from `source_files`) as texts and labels, rejects named by row."""
        raise NotImplementedError

    def allowed_labels(self) -> list[str] | None:
        """The label set in order, or None to take the labels found in the data."""
        return None

    @classmethod
    def datamodule_class(cls) -> type:
        return pkgutil.resolve_name(cls.datamodule)


class PriceDatasetConfig(DatasetConfig):
    """A price data set: `read` gives rows whose label is `pack(price, features)`, features in the
    order of `features`; rows whose price does not parse are rejected as `unparseable_value`."""

    features: ClassVar[tuple[str, ...]] = ()
    datamodule: ClassVar[str] = PRICE_DATAMODULE
    duplicates_by_label: ClassVar[bool] = True

    log_target: bool = Field(True, description="Learn log(1 + price) (prices span orders of magnitude).")
    drop_conflicts: bool = Field(False, description="Drop every copy of a text listed at two prices.")


def pack(price: float, features: list[float]) -> str:
    """A price row's label while cleaning: price and features as one small JSON list."""
    return json.dumps([round(float(price), 4), *(round(float(f), 6) for f in features)])


def finite(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and (math.isnan(x) or math.isinf(x)))


def cell(value: object) -> str | None:
    """A table cell as stripped text; empty, None and NaN are None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def info_row(cls: type[DatasetConfig]) -> dict[str, Any]:
    """The `ecomlab datasets` row of a data set."""
    return {
        "tasks": f"{', '.join(cls.tasks)} ({cls.targets})",
        "size": cls.size,
        "language": cls.language,
        "assets": cls.assets,
    }
