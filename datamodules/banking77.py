"""Banking77 customer-service intents (English; PolyAI, CC BY 4.0): 77 intents, 10,003 train / 3,080 test.

No package reachable here ships it, so the data comes from either
- `path`: a folder with the original `train.csv` and `test.csv` (columns `text,category`, as in
  github.com/PolyAI-LDN/task-specific-datasets), or
- the HF hub through `datasets.load_dataset(hub_id)` when `path` is not set (needs `pip install
  datasets` and network or a local HF cache).
The test file stays the test split; validation is a seeded stratified share of the train file.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from datamodules.cleaning import RawExamples
from datamodules.dataset import DatasetConfig
from experiments.core.errors import DataError

FILES = ("train.csv", "test.csv")


class Banking77Data(DatasetConfig):
    """Banking77 customer-service intents (PolyAI): 77 intents, 10,003 train / 3,080 test. Intents are
    the categories of the train file; a test row with any other is an unknown label."""

    tasks: ClassVar = ("text_classification",)
    targets: ClassVar = "customer-service intent: 77 intents"
    size: ClassVar = "10,003 train / 3,080 test (your copy or the HF hub)"
    language: ClassVar = "en"

    dataset: Literal["banking77"] = "banking77"
    path: str | None = Field(
        None,
        description="Folder with the original train.csv and test.csv (text,category); None: HF `datasets`.",
    )
    hub_id: str = Field("PolyAI/banking77", description="HF dataset id used when `path` is None.")

    def source_files(self) -> list[Path]:
        if self.path is None:
            return [self._hub_export()]
        folder = Path(self.path).expanduser()
        missing = [f for f in FILES if not (folder / f).is_file()]
        if missing:
            raise DataError(
                f"data.path: {folder} has no {', '.join(missing)}; Banking77 needs the original "
                "train.csv and test.csv (columns text,category)."
            )
        return [folder / f for f in FILES]

    def _hub_export(self) -> Path:
        """Load through HF `datasets` once and keep a CSV copy in the cache (so fingerprints work)."""
        from experiments.core.assets import cache_root

        out = cache_root() / "hub" / self.hub_id.replace("/", "__")
        target = out / "all.csv"
        if target.is_file():
            return target
        try:
            from datasets import load_dataset
        except ImportError:
            raise DataError(
                "banking77: data.path is not set and the `datasets` package is not installed; "
                "`pip install datasets` (with hub access) or point data.path at a folder with the "
                "original train.csv and test.csv."
            ) from None
        try:
            ds = load_dataset(self.hub_id)
        except Exception as exc:  # noqa: BLE001 - no network, no cache, unknown id
            raise DataError(
                f"banking77: cannot load {self.hub_id!r} from the HF hub: {str(exc).splitlines()[0]}. "
                "Set data.path to a folder with the original train.csv and test.csv."
            ) from None
        names = ds["train"].features["label"].names
        out.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "category", "split"])
            for split in ("train", "test"):
                for ex in ds[split]:
                    w.writerow([ex["text"], names[ex["label"]], split])
        tmp.replace(target)
        return target

    def read(self, files: list[Path]) -> RawExamples:
        from datamodules.splitting import stratified_split

        raw = RawExamples()
        rows: list[tuple[str | None, str | None, str, str]] = []  # text, label, where, file split
        for path in files:
            with open(path, newline="", encoding="utf-8", errors="strict") as f:
                try:
                    reader = csv.DictReader(f)
                    if not reader.fieldnames or not {"text", "category"} <= set(reader.fieldnames):
                        raise DataError(f"{path}: expected columns text,category (got {reader.fieldnames}).")
                    for row in reader:
                        where = f"{path.name} line {reader.line_num}"
                        if None in row or any(v is None for v in row.values()):
                            raw.reject("malformed", where)
                            continue
                        split = row.get("split") or path.stem
                        rows.append(
                            (row["text"].strip() or None, row["category"].strip() or None, where, split)
                        )
                except UnicodeDecodeError as exc:
                    raise DataError(f"{path}: not UTF-8 text ({exc}).") from None
        raw.allowed = sorted({str(r[1]) for r in rows if r[3] == "train" and r[1]})
        # validation: a seeded stratified share of the train file; the test file stays the test split
        train_ix = [i for i, r in enumerate(rows) if r[3] == "train"]
        held = stratified_split([str(rows[i][1]) for i in train_ix], self.val_fraction, 0.0, self.split_seed)
        split = {i: ("val" if a == "val" else "train") for i, a in zip(train_ix, held)}
        for i, (text, label, where, file_split) in enumerate(rows):
            raw.add(text, label, where, split.get(i, "test" if file_split == "test" else "train"))
        return raw
