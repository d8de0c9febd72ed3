"""Explicit registries: config names -> classes. A test checks they match the files on disk."""

from __future__ import annotations

from datamodules.banking77 import Banking77DataModule
from datamodules.dangdang_reviews import DangdangReviewsDataModule
from datamodules.electronics_prices import ElectronicsPricesDataModule
from datamodules.electronics_products import ElectronicsProductsDataModule
from datamodules.fake_reviews import FakeReviewsDataModule
from datamodules.open_bandit import OpenBanditDataModule
from datamodules.pc_prices import PcPricesDataModule
from datamodules.text_file import TextFileDataModule
from datamodules.womens_clothing_reviews import WomensClothingReviewsDataModule
from lightning_modules.click_through import ClickThroughModule
from lightning_modules.price_regression import PriceRegressionModule
from lightning_modules.text_classification import TextClassificationModule

DATAMODULES = {
    "dangdang_reviews": DangdangReviewsDataModule,
    "womens_clothing_reviews": WomensClothingReviewsDataModule,
    "text_file": TextFileDataModule,
    "electronics_products": ElectronicsProductsDataModule,
    "banking77": Banking77DataModule,
    "fake_reviews": FakeReviewsDataModule,
    "electronics_prices": ElectronicsPricesDataModule,
    "pc_prices": PcPricesDataModule,
    "open_bandit": OpenBanditDataModule,
}

TASKS = {
    "text_classification": TextClassificationModule,
    "price_regression": PriceRegressionModule,
    "click_through": ClickThroughModule,
}

# What `ecomlab datasets` shows: task/targets, size as shipped, language, source asset.
DATASET_INFO = {
    "dangdang_reviews": {
        "tasks": "text_classification (sentiment: negative/positive)",
        "size": "35,124 lines (~17k distinct texts)",
        "language": "zh",
        "asset": "dangdang_reviews",
    },
    "womens_clothing_reviews": {
        "tasks": "text_classification (target: recommended | rating | department | class)",
        "size": "23,486 reviews",
        "language": "en",
        "asset": "womens_clothing_reviews",
    },
    "electronics_products": {
        "tasks": "text_classification (product categorisation: 18 sub categories)",
        "size": "643 listings",
        "language": "en",
        "asset": "electronics_products",
    },
    "banking77": {
        "tasks": "text_classification (customer-service intent: 77 intents)",
        "size": "10,003 train / 3,080 test (your copy or the HF hub)",
        "language": "en",
        "asset": None,
    },
    "fake_reviews": {
        "tasks": "text_classification (fake review: computer_generated / original)",
        "size": "40,432 reviews (your copy)",
        "language": "en",
        "asset": None,
    },
    "electronics_prices": {
        "tasks": "price_regression (title + features text, discount, rating, category -> price)",
        "size": "643 listings",
        "language": "en",
        "asset": "electronics_products",
    },
    "pc_prices": {
        "tasks": "price_regression (PC spec sheet -> price, 1993-1995)",
        "size": "6,259 computers",
        "language": "en",
        "asset": "pc_prices",
    },
    "open_bandit": {
        "tasks": "click_through (ZOZOTOWN impressions: item, position, user/item features -> click)",
        "size": "60,000 impressions (~0.4% clicks), 2 policies x 3 campaigns",
        "language": "- (tabular)",
        "asset": "open_bandit",
    },
    "text_file": {
        "tasks": "text_classification (your label column)",
        "size": "your CSV / JSONL / Parquet file",
        "language": "any",
        "asset": None,
    },
}
