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
        sampler = self._shard(ds, shuffle)
        return DataLoader(
            ds,
            batch_size=bs,
            shuffle=shuffle if sampler is None else False,
            sampler=sampler,
            collate_fn=ds.collate,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
        )

    def _shard(self, ds: Any, shuffle: bool) -> Any:
        """On several devices, this rank's share: train shuffled and padded to equal shards (DDP needs
        the same number of steps everywhere); val and test split without padding, so that the reduced
        metrics count every example exactly once. None on one device."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.world_size <= 1:
            return None
        if shuffle:
            from torch.utils.data.distributed import DistributedSampler

            return DistributedSampler(
                ds,
                num_replicas=trainer.world_size,
                rank=trainer.global_rank,
                shuffle=True,
                seed=int(getattr(self.cfg, "split_seed", 0)),
            )
        from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

        return UnrepeatedDistributedSampler(
            ds, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
