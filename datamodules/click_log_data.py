"""The LightningDataModule of click logs (impressions with clicks), for click-through prediction.

The data set (e.g. `open_bandit.OpenBanditData`) reads rows and assigns splits; this module does the
rest for every click log: optional subsampling, negative sampling of the train split's non-clicks,
category indices from the train split only (0 = unseen), tensors cached by fingerprint, and the
cleaning report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch.utils.data import Dataset

from datamodules.cleaning import CleaningReport
from datamodules.split_loaders import SplitDataLoaders
from datamodules.splitting import SPLITS
from experiments.core import fingerprints, token_cache
from experiments.core.errors import DataError


class TabularSplit(Dataset):
    def __init__(self, categorical: torch.Tensor, numeric: torch.Tensor, labels: torch.Tensor):
        self.categorical, self.numeric, self.labels = categorical, numeric, labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, idx: list[int]) -> dict[str, torch.Tensor]:
        ix = torch.as_tensor(idx, dtype=torch.long)
        return {"categorical": self.categorical[ix], "numeric": self.numeric[ix], "labels": self.labels[ix]}


class ClickLogDataModule(SplitDataLoaders):
    """`cfg` is the data set's config: `source_files`, `read_rows`, `assign` and the `categorical` /
    `numeric` feature names."""

    def __init__(self, cfg: Any, tokenizer_loader: Any = None, console: Console | None = None):
        super().__init__()
        self.cfg = cfg
        self.console = console or Console()
        self.tokenizer = None  # no text
        self.label_names = ["no_click", "click"]
        self.splits: dict[str, TabularSplit] = {}
        self.report: CleaningReport | None = None
        self.meta: dict[str, Any] = {}
        self.cache_hit = None
        self.cache_key = ""
        self.data_fingerprint = ""
        self.tokenizer_fingerprint = ""

    def source_files(self) -> list[Path]:
        return self.cfg.source_files()

    def prepare_data(self) -> None:
        self.source_files()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        files = self.source_files()
        self.data_fingerprint = fingerprints.files_fingerprint(files)
        # v2: the meta keeps the category vocabularies, which an exported model serves with
        self.cache_key = fingerprints.fingerprint(
            "click-log-v2",
            self.cfg.name,
            self.data_fingerprint,
            self.cfg.model_dump(mode="json", exclude={"batch_size", "eval_batch_size", "num_workers"}),
        )
        cached = token_cache.load(self.cache_key)
        self.cache_hit = cached is not None
        if cached is None:
            cached = token_cache.CachedSplits(*self._build(files))
            token_cache.save(self.cache_key, cached.tensors, cached.meta)
        self.meta = cached.meta
        self.report = CleaningReport.from_dict(self.meta["report"])
        for s in SPLITS:
            t = cached.tensors
            self.splits[s] = TabularSplit(t[f"{s}.categorical"], t[f"{s}.numeric"], t[f"{s}.labels"])
        self.print_report()

    def _build(self, files: list[Path]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        categorical, numeric = self.cfg.categorical, self.cfg.numeric
        rows, rep = self.cfg.read_rows(files)
        assignment = self.cfg.assign(rows)
        by = {s: [r for r, a in zip(rows, assignment) if a == s] for s in SPLITS}
        if empty := [s for s in SPLITS if not by[s]]:
            raise DataError(
                f"{self.cfg.name}: split(s) {', '.join(empty)} are empty; use more data or larger fractions."
            )
        if keep := self.cfg.subsample:
            rng = np.random.default_rng(self.cfg.split_seed)
            for s in SPLITS:
                n = max(1, int(round(keep * len(by[s]) / len(rows))))
                pick = sorted(rng.permutation(len(by[s]))[:n])
                by[s] = [by[s][i] for i in pick]
        base_ctr = sum(r["click"] for r in by["train"]) / len(by["train"])  # before negative sampling
        rate = self.cfg.negative_sampling
        if rate < 1.0:  # keep every click and a seeded share of the train split's non-clicks
            rng = np.random.default_rng(self.cfg.split_seed + 1)
            by["train"] = [r for r in by["train"] if r["click"] or rng.random() < rate]
        # category -> index from the train split only; 0 = unseen
        vocab = {
            c: {v: i + 1 for i, v in enumerate(sorted({str(r[c]) for r in by["train"]}))} for c in categorical
        }
        tensors: dict[str, torch.Tensor] = {}
        for s in SPLITS:
            tensors[f"{s}.categorical"] = torch.tensor(
                [[vocab[c].get(str(r[c]), 0) for c in categorical] for r in by[s]], dtype=torch.long
            )
            tensors[f"{s}.numeric"] = torch.tensor(
                [[float(r[c]) for c in numeric] for r in by[s]], dtype=torch.float32
            )
            tensors[f"{s}.labels"] = torch.tensor([r["click"] for r in by[s]], dtype=torch.long)
        train_num = tensors["train.numeric"]
        clicks = {s: int(tensors[f"{s}.labels"].sum()) for s in SPLITS}
        meta = {
            "report": rep.to_dict(),
            "categorical": list(categorical),
            "cardinalities": [len(vocab[c]) + 1 for c in categorical],
            "vocab": vocab,
            "numeric": list(numeric),
            "numeric_mean": train_num.mean(0).tolist(),
            "numeric_std": [s if s > 1e-9 else 1.0 for s in train_num.std(0).tolist()],
            "base_ctr": base_ctr,
            "negative_sampling": rate,
            "class_counts": {s: {"impressions": len(by[s]), "clicks": clicks[s]} for s in SPLITS},
            "time_ranges": {
                s: [min(r["time"] for r in by[s]), max(r["time"] for r in by[s])] for s in SPLITS
            },
            "label_names": self.label_names,
        }
        return tensors, meta

    def print_report(self) -> None:
        assert self.report is not None
        counts = self.meta["class_counts"]
        caption = "; ".join(
            f"{s} {c['impressions']} impressions, {c['clicks']} clicks" for s, c in counts.items()
        )
        self.console.print(
            self.report.table(
                f"{caption}; split: {self.cfg.split}", " (from cache)" if self.cache_hit else ""
            )
        )
