"""Explicit registries: names -> the declarations that say everything else. A test checks that they
match the files on disk; the config union, the task tables, the knob groups, `ecomlab datasets` and
`ecomlab config` are built from them.

The dicts hold torch-free declarations (a data set's config class, a task's `TaskSpec`, a `Knob`), so
the config reads them without importing torch; `build_datamodule`, `build_module` and
`training_hooks` import the heavy classes only when a run builds them.
"""

from __future__ import annotations

from typing import Any

from datamodules import augment as augmentation
from datamodules import eval_splits
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
from experiments.core.knob import Knob, TrainingHook
from lightning_modules import click_through, price_regression, text_classification
from lightning_modules.knobs import adversarial, compress, distill, model, optim, peft, prune, rdrop
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


# One line a knob, in the order of the config's groups and of the training hooks (label smoothing
# before distillation: the soft-label term mixes with the smoothed label loss).
KNOBS: dict[str, Knob] = {
    knob.group: knob
    for knob in (
        model.KNOB,
        peft.KNOB,
        optim.KNOB,
        prune.KNOB,
        compress.KNOB,
        distill.KNOB,
        adversarial.KNOB,
        rdrop.KNOB,
        augmentation.KNOB,
        eval_splits.KNOB,
    )
}


def build_datamodule(
    cfg: Any, console: Any = None, augment: bool = True, fold: tuple[int, int] | None = None
) -> Any:
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
    dm.val_subset = cfg.eval.val_subset
    return dm


def build_module(cfg: Any, dm: Any) -> Any:
    """The task's LightningModule around a model built from `cfg` and the set-up `dm`, with the
    training hooks of every knob that `cfg` turns on."""
    module = TASKS[cfg.task].module_class().from_config(cfg, dm)
    module.hooks = training_hooks(cfg)
    return module


def training_hooks(cfg: Any) -> list[TrainingHook]:
    """The hooks of the knobs `cfg` turns on, in registry order."""
    return [hook for knob in KNOBS.values() if (hook := knob.training_hook(cfg)) is not None]
