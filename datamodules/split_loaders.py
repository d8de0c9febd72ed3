"""What every DataModule here shares once its `splits` exist: split sizes and the three DataLoaders.

A split is a map-style dataset of indices with a `collate(indices) -> batch` method, so batches are
built by tensor indexing instead of per-example stacking.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader

from datamodules.splitting import SPLITS


class SplitDataLoaders(pl.LightningDataModule):
    """Subclasses fill `self.splits` (train/val/test) in `setup`; `self.cfg` has the batch options."""

    cfg: Any
    splits: dict[str, Any]

    def split_sizes(self) -> dict[str, int]:
        return {s: len(self.splits[s]) for s in SPLITS}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.splits[split]
        bs = (
            self.cfg.batch_size if split == "train" else (self.cfg.eval_batch_size or 2 * self.cfg.batch_size)
        )
        return DataLoader(ds, batch_size=bs, shuffle=shuffle, collate_fn=ds.collate,
                          num_workers=self.cfg.num_workers, persistent_workers=self.cfg.num_workers > 0)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
