"""Explicit registries: config names -> classes. A test checks they match the files on disk."""

from __future__ import annotations

from datamodules.dangdang_reviews import DangdangReviewsDataModule
from datamodules.text_file import TextFileDataModule
from datamodules.womens_clothing_reviews import WomensClothingReviewsDataModule
from lightning_modules.text_classification import TextClassificationModule

DATAMODULES = {
    "dangdang_reviews": DangdangReviewsDataModule,
    "womens_clothing_reviews": WomensClothingReviewsDataModule,
    "text_file": TextFileDataModule,
}

TASKS = {
    "text_classification": TextClassificationModule,
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
        "tasks": "text_classification (target: recommended | rating | department)",
        "size": "23,486 reviews",
        "language": "en",
        "asset": "womens_clothing_reviews",
    },
    "text_file": {
        "tasks": "text_classification (your label column)",
        "size": "your CSV / JSONL / Parquet file",
        "language": "any",
        "asset": None,
    },
}
