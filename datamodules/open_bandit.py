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
from typing import Any, ClassVar, Literal

from pydantic import Field

from datamodules.cleaning import CleaningReport
from datamodules.dataset import CLICK_LOG_DATAMODULE, DatasetConfig
from experiments.core import assets
from experiments.core.errors import DataError

ROOT = "obp/dataset/obd"


class OpenBanditData(DatasetConfig):
    """Open Bandit Dataset sample (obp 0.5.7): ZOZOTOWN impressions with clicks."""

    tasks: ClassVar = ("click_through",)
    targets: ClassVar = "ZOZOTOWN impressions: item, position, user/item features -> click"
    size: ClassVar = "60,000 impressions (~0.4% clicks), 2 policies x 3 campaigns"
    language: ClassVar = "- (tabular)"
    assets: ClassVar = ("open_bandit",)
    datamodule: ClassVar = CLICK_LOG_DATAMODULE
    categorical: ClassVar = (
        "item",
        "position",
        "user_feature_0",
        "user_feature_1",
        "user_feature_2",
        "user_feature_3",
        "item_feature_1",
        "item_feature_2",
        "item_feature_3",
    )
    numeric: ClassVar = ("affinity", "item_feature_0")

    dataset: Literal["open_bandit"] = "open_bandit"
    policies: list[Literal["random", "bts"]] = Field(
        ["random", "bts"], min_length=1, description="Logging policies whose impressions to use."
    )
    campaigns: list[Literal["all", "men", "women"]] = Field(
        ["all", "men", "women"], min_length=1, description="Campaigns whose impressions to use."
    )
    split: Literal["time", "random"] = Field(
        "time", description="time: train on earlier, test on later impressions."
    )
    negative_sampling: float = Field(1.0, gt=0, le=1, description="Share of train non-clicks kept (1: all).")
    batch_size: int = Field(256, ge=1, description="Examples per training batch.")
    max_length: int = Field(128, ge=8, le=4096, description="Unused (no text).")

    def source_files(self) -> list[Path]:
        root = assets.fetch("open_bandit") / ROOT
        files = []
        for policy in self.policies:
            for campaign in self.campaigns:
                files += [
                    root / policy / campaign / f"{campaign}.csv",
                    root / policy / campaign / "item_context.csv",
                ]
        return files

    def read_rows(self, files: list[Path]) -> tuple[list[dict[str, Any]], CleaningReport]:
        """One dict per impression (time, click, the categorical and numeric features), and the report."""
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
                    rows.append(
                        {
                            "time": when,
                            "click": click,
                            "item": f"{campaign}:{item}",
                            "position": row["position"],
                            "affinity": affinity,
                            **{f"user_feature_{k}": row[f"user_feature_{k}"] for k in range(4)},
                            **{f"item_feature_{k}": ctx[k] for k in range(4)},
                        }
                    )
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
                    out[int(row["item_id"])] = [
                        float(row["item_feature_0"]),
                        row["item_feature_1"],
                        row["item_feature_2"],
                        row["item_feature_3"],
                    ]
                except (ValueError, KeyError, TypeError):
                    continue  # an item without context: its impressions are reported as unparseable
        return out

    def assign(self, rows: list[dict[str, Any]]) -> list[str]:
        """train/val/test for each row: by time (the latest are test) or a seeded split stratified by click."""
        from datamodules.splitting import stratified_split

        cfg = self
        if cfg.split == "random":
            return stratified_split(
                [str(r["click"]) for r in rows], cfg.val_fraction, cfg.test_fraction, cfg.split_seed
            )
        order = sorted(range(len(rows)), key=lambda i: (rows[i]["time"], i))
        n_test, n_val = int(round(len(rows) * cfg.test_fraction)), int(round(len(rows) * cfg.val_fraction))
        assignment = ["train"] * len(rows)
        for i in order[len(rows) - n_test :]:
            assignment[i] = "test"
        for i in order[len(rows) - n_test - n_val : len(rows) - n_test]:
            assignment[i] = "val"
        return assignment
