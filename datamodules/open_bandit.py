"""Open Bandit Dataset (ZOZOTOWN fashion store; Saito et al. 2021): impression logs with clicks, for
click-through prediction. The small sample that `obp==0.5.7` ships: 10,000 impressions for each of two
logging policies (random, bts) x three campaigns (all, men, women), one week of November 2019.

Each impression: timestamp, item shown, position (1-3), click, four hashed user features and the
user's affinity to every item; `item_context.csv` adds a numeric and three hashed item features.
Features here: categorical = (campaign:item, position, user features 0-3, item features 1-3),
numeric = (affinity to the item shown, item feature 0). Categories are indexed from the train split
only (unseen ones share index 0). Clicks are rare (~0.4%): `data.negative_sampling` keeps only that
share of the train split's non-clicks (the model corrects its logits by log(rate) so probabilities
stay calibrated), and `ctr.pos_weight` weights clicks in the loss; both are searchable.

Split `time` (default) trains on the earliest impressions and tests on the latest, as CTR models are
judged; `random` is a seeded split stratified by click.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch.utils.data import Dataset

from experiments.core import fingerprints, token_cache
from datamodules.cleaning import CleaningReport
from datamodules.split_loaders import SplitDataLoaders
from datamodules.splitting import SPLITS, stratified_split
from experiments.core import assets
from experiments.core.errors import DataError

ROOT = "obp/dataset/obd"
CATEGORICAL = ("item", "position", "user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3",
               "item_feature_1", "item_feature_2", "item_feature_3")  # fmt: skip
NUMERIC = ("affinity", "item_feature_0")


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


class OpenBanditDataModule(SplitDataLoaders):
    name = "open_bandit"
    language = "-"
    asset = "open_bandit"

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
        root = assets.fetch(self.asset) / ROOT
        files = []
        for policy in self.cfg.policies:
            for campaign in self.cfg.campaigns:
                files += [root / policy / campaign / f"{campaign}.csv", root / policy / campaign / "item_context.csv"]
        return files

    def prepare_data(self) -> None:
        self.source_files()

    def _read(self) -> tuple[list[dict[str, Any]], CleaningReport]:
        files = self.source_files()
        rep = CleaningReport(source=self.name)
        rows: list[dict[str, Any]] = []
        for log_file, ctx_file in zip(files[::2], files[1::2]):
            campaign = log_file.parent.name
            items = self._items(ctx_file)
            with open(log_file, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                for row in reader:
                    rep.rows_read += 1
                    where = f"{log_file.parent.parent.name}/{campaign}/{log_file.name} line {reader.line_num}"
                    if None in row or any(v is None for v in row.values()):
                        rep.drop("malformed", where)
                        continue
                    try:
                        item = int(row["item_id"])
                        click = int(row["click"])
                        when = datetime.fromisoformat(row["timestamp"]).timestamp()
                        affinity = float(row.get(f"user-item_affinity_{item}") or 0.0)
                        if click not in (0, 1) or item not in items or not math.isfinite(affinity):
                            raise ValueError
                    except (ValueError, KeyError):
                        rep.drop("unparseable_value", where)
                        continue
                    ctx = items[item]
                    rows.append({"time": when, "click": click, "item": f"{campaign}:{item}",
                                 "position": row["position"], "affinity": affinity,
                                 **{f"user_feature_{k}": row[f"user_feature_{k}"] for k in range(4)},
                                 **{f"item_feature_{k}": ctx[k] for k in range(4)}})  # fmt: skip
        rep.kept = len(rows)
        if not rows:
            raise DataError(f"{self.name}: no impressions left after cleaning ({rep.summary()}).")
        return rows, rep

    @staticmethod
    def _items(path: Path) -> dict[int, list[Any]]:
        out: dict[int, list[Any]] = {}
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                try:
                    out[int(row["item_id"])] = [float(row["item_feature_0"]), row["item_feature_1"],
                                                row["item_feature_2"], row["item_feature_3"]]  # fmt: skip
                except (ValueError, KeyError, TypeError):
                    continue  # an item without context: its impressions are reported as unparseable
        return out

    def _assign(self, rows: list[dict[str, Any]]) -> list[str]:
        cfg = self.cfg
        if cfg.split == "random":
            return stratified_split([str(r["click"]) for r in rows], cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
        order = sorted(range(len(rows)), key=lambda i: (rows[i]["time"], i))
        n_test, n_val = int(round(len(rows) * cfg.test_fraction)), int(round(len(rows) * cfg.val_fraction))
        assignment = ["train"] * len(rows)
        for i in order[len(rows) - n_test :]:
            assignment[i] = "test"
        for i in order[len(rows) - n_test - n_val : len(rows) - n_test]:
            assignment[i] = "val"
        return assignment

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        files = self.source_files()
        self.data_fingerprint = fingerprints.files_fingerprint(files)
        self.cache_key = fingerprints.fingerprint("open_bandit", self.data_fingerprint,
                                                 self.cfg.model_dump(mode="json", exclude={"batch_size", "eval_batch_size", "num_workers"}))  # fmt: skip
        cached = token_cache.load(self.cache_key)
        self.cache_hit = cached is not None
        if cached is None:
            cached = token_cache.CachedSplits(*self._build())
            token_cache.save(self.cache_key, cached.tensors, cached.meta)
        self.meta = cached.meta
        self.report = CleaningReport.from_dict(self.meta["report"])
        for s in SPLITS:
            t = cached.tensors
            self.splits[s] = TabularSplit(t[f"{s}.categorical"], t[f"{s}.numeric"], t[f"{s}.labels"])
        self.print_report()

    def _build(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        rows, rep = self._read()
        assignment = self._assign(rows)
        by = {s: [r for r, a in zip(rows, assignment) if a == s] for s in SPLITS}
        if empty := [s for s in SPLITS if not by[s]]:
            raise DataError(f"{self.name}: split(s) {', '.join(empty)} are empty; use more data or larger fractions.")
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
        vocab = {c: {v: i + 1 for i, v in enumerate(sorted({str(r[c]) for r in by["train"]}))} for c in CATEGORICAL}
        tensors: dict[str, torch.Tensor] = {}
        for s in SPLITS:
            tensors[f"{s}.categorical"] = torch.tensor([[vocab[c].get(str(r[c]), 0) for c in CATEGORICAL] for r in by[s]],
                                                       dtype=torch.long)  # fmt: skip
            tensors[f"{s}.numeric"] = torch.tensor([[float(r[c]) for c in NUMERIC] for r in by[s]], dtype=torch.float32)
            tensors[f"{s}.labels"] = torch.tensor([r["click"] for r in by[s]], dtype=torch.long)
        train_num = tensors["train.numeric"]
        clicks = {s: int(tensors[f"{s}.labels"].sum()) for s in SPLITS}
        meta = {
            "report": rep.to_dict(),
            "categorical": list(CATEGORICAL), "cardinalities": [len(vocab[c]) + 1 for c in CATEGORICAL],
            "numeric": list(NUMERIC), "numeric_mean": train_num.mean(0).tolist(),
            "numeric_std": [s if s > 1e-9 else 1.0 for s in train_num.std(0).tolist()],
            "base_ctr": base_ctr, "negative_sampling": rate,
            "class_counts": {s: {"impressions": len(by[s]), "clicks": clicks[s]} for s in SPLITS},
            "time_ranges": {s: [min(r["time"] for r in by[s]), max(r["time"] for r in by[s])] for s in SPLITS},
            "label_names": self.label_names,
        }  # fmt: skip
        return tensors, meta

    def print_report(self) -> None:
        assert self.report is not None
        counts = self.meta["class_counts"]
        caption = "; ".join(f"{s} {c['impressions']} impressions, {c['clicks']} clicks" for s, c in counts.items())
        self.console.print(self.report.table(f"{caption}; split: {self.cfg.split}", " (from cache)" if self.cache_hit else ""))
