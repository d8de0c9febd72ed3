"""What every DataModule here shares once its `splits` exist: split sizes and the three DataLoaders.

A split is a map-style dataset of indices with a `collate(indices) -> batch` method, so batches are
built by tensor indexing instead of per-example stacking.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Sampler

from datamodules.splitting import SPLITS


def mid_epoch(trainer: Any) -> bool:
    """Whether a validation runs inside a training epoch (`trainer.val_check_interval`), not after its
    last batch (nor as the sanity check or an evaluation after training)."""
    if trainer is None or trainer.sanity_checking or trainer.state.fn != "fit":
        return False
    return not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch


class ValSubset(Sampler):
    """The val split, or inside an epoch a fixed, seeded subset of it (`eval.val_subset`), this
    rank's share of either (by stride, no padding: each example counted once)."""

    def __init__(self, size: int, subset: float | int, seed: int, dm: Any) -> None:
        import random

        k = max(1, min(size, round(subset * size) if isinstance(subset, float) else int(subset)))
        self.full = list(range(size))
        self.subset = sorted(random.Random(seed).sample(self.full, k))
        self.dm = dm

    def _indices(self) -> list[int]:
        trainer = getattr(self.dm, "trainer", None)
        chosen = self.subset if mid_epoch(trainer) else self.full
        if trainer is not None and trainer.world_size > 1:
            chosen = chosen[trainer.global_rank :: trainer.world_size]
        return chosen

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


class SplitDataLoaders(pl.LightningDataModule):
    """Subclasses fill `self.splits` (train/val/test) in `setup`; `self.cfg` has the batch options.
    `val_subset` (set by `experiments.config.registry.build_datamodule` from `eval.val_subset`)
    makes the validations inside an epoch use a seeded subset of val."""

    cfg: Any
    splits: dict[str, Any]
    val_subset: float | int | None = None

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
        if self.val_subset is None:
            return self._loader("val", shuffle=False)
        ds = self.splits["val"]
        sampler = ValSubset(len(ds), self.val_subset, int(getattr(self.cfg, "split_seed", 0)), self)
        bs = self.cfg.eval_batch_size or 2 * self.cfg.batch_size
        return DataLoader(
            ds,
            batch_size=bs,
            sampler=sampler,
            collate_fn=ds.collate,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
        )

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
