"""Base of the price DataModules: product text plus numeric features -> price.

It reuses the text pipeline (cleaning report, split, token cache) with four changes: a row's label is
its price and feature vector (kept together as a small JSON list while cleaning); only exact
duplicate rows are dropped, and the same text at different prices is not a conflict (`data.
drop_conflicts` defaults to false: one spec sheet sold at two prices is two observations); splits are
stratified over price quintiles; and each
split's tensors are `labels` (price, float) and `features` (float). The train split's feature and
target statistics go into the cache metadata, so the model standardises with train numbers only.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from datamodules.text_classification_data import PreparedSplits, TextClassificationDataModule

PRICE_BINS = 5


def unpack(labels: list[str]) -> np.ndarray:
    return np.array([json.loads(lab) for lab in labels], dtype=np.float64).reshape(len(labels), -1)


class PriceDataModule(TextClassificationDataModule):
    """The DataModule of price data sets (`dataset.PriceDatasetConfig`): rows whose label is
    `pack(price, features)`, features named by `cfg.features`."""

    @staticmethod
    def arrays(labels: list[str]) -> np.ndarray:
        """A split's packed labels as one row per example: [price, feature 1, ...] (for baselines)."""
        return unpack(labels)

    def strata(self, labels: list[str]) -> list[str]:
        prices = unpack(labels)[:, 0] if labels else np.zeros(0)
        if len(prices) < 2 * PRICE_BINS:
            return ["all"] * len(labels)
        edges = np.quantile(prices, np.linspace(0, 1, PRICE_BINS + 1)[1:-1])
        return [f"q{int(np.searchsorted(edges, p, side='right'))}" for p in prices]

    def label_set(self, labels: list[str], allowed: list[str] | None) -> list[str]:
        return []  # no classes

    def encode_labels(self, labels: list[str], names: list[str]) -> dict[str, torch.Tensor]:
        arr = unpack(labels)
        return {
            "labels": torch.tensor(arr[:, 0], dtype=torch.float32),
            "features": torch.tensor(arr[:, 1:], dtype=torch.float32),
        }

    def describe_labels(self, labels: list[str]) -> dict[str, Any]:
        prices = unpack(labels)[:, 0]
        return {
            "n": len(prices),
            "price_min": float(prices.min()),
            "price_median": float(np.median(prices)),
            "price_max": float(prices.max()),
        }

    def extra_meta(self, prep: PreparedSplits) -> dict[str, Any]:
        arr = unpack(prep.labels["train"])
        prices, feats = arr[:, 0], arr[:, 1:]
        log = np.log1p(prices)
        return {
            "features": list(self.cfg.features),
            "feature_mean": feats.mean(axis=0).tolist(),
            "feature_std": [s if s > 1e-9 else 1.0 for s in feats.std(axis=0).tolist()],
            "price_mean": float(prices.mean()),
            "price_std": float(prices.std() or 1.0),
            "log_price_mean": float(log.mean()),
            "log_price_std": float(log.std() or 1.0),
        }

    def print_report(self) -> None:
        super().print_report()
        more = f", ... ({len(self.cfg.features)} in all)" if len(self.cfg.features) > 6 else ""
        self.console.print(f"features: {', '.join(self.cfg.features[:6])}{more}; target: price")
