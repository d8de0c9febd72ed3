"""Explicit registries: names -> the declarations that say everything else. A test checks that they
match the files on disk; the config union, the task tables and `ecomlab datasets` are built from them.

Both dicts hold torch-free declarations (a data set's config class, a task's `TaskSpec`), so the
config reads them without importing torch; `build_datamodule` and `build_module` import the heavy
classes only when a run builds them.
"""

from __future__ import annotations

from typing import Any

from datamodules.banking77 import Banking77Data
from datamodules.dangdang_reviews import DangdangReviewsData
from datamodules.dataset import DatasetConfig
from datamodules.electronics_prices import ElectronicsPricesData
from datamodules.electronics_products import ElectronicsProductsData
from datamodules.fake_reviews import FakeReviewsData
from datamodules.open_bandit import OpenBanditData
from datamodules.pc_prices import PcPricesData
from datamodules.text_file import TextFileData
from datamodules.womens_clothing_reviews import WomensClothingReviewsData
from lightning_modules import click_through, price_regression, text_classification
from lightning_modules.task import TaskSpec

DATASETS: dict[str, type[DatasetConfig]] = {
    "dangdang_reviews": DangdangReviewsData,
    "womens_clothing_reviews": WomensClothingReviewsData,
    "text_file": TextFileData,
    "electronics_products": ElectronicsProductsData,
    "banking77": Banking77Data,
    "fake_reviews": FakeReviewsData,
    "electronics_prices": ElectronicsPricesData,
    "pc_prices": PcPricesData,
    "open_bandit": OpenBanditData,
}

TASKS: dict[str, TaskSpec] = {
    "text_classification": text_classification.SPEC,
    "price_regression": price_regression.SPEC,
    "click_through": click_through.SPEC,
}


def build_datamodule(cfg: Any, console: Any = None, augment: bool = True,
                     fold: tuple[int, int] | None = None) -> Any:  # fmt: skip
    """The LightningDataModule of `cfg.data`, with the tokenizer of `cfg.model` and the train-split
    augmentation of `cfg.augment` (`augment=False`: the originals only, for rebuilding a trained
    model), on cross-validation fold `fold` = (k, K) if given (not set up yet)."""
    from datamodules.augment import Augmentation
    from lightning_modules.backbones import tokenizer_loader

    dm = type(cfg.data).datamodule_class()(cfg.data, tokenizer_loader(cfg.model), console=console)
    a = cfg.augment
    if augment and a.method != "none":
        dm.augment = Augmentation(a.method, a.p, a.copies, cfg.seed)
    dm.fold = fold
    return dm


def build_module(cfg: Any, dm: Any) -> Any:
    """The task's LightningModule around a model built from `cfg` and the set-up `dm`."""
    return TASKS[cfg.task].module_class().from_config(cfg, dm)
