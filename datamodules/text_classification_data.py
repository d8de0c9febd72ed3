"""The LightningDataModule of text data sets: read -> clean -> subsample -> split -> tokenise (cached).

A data set (`datamodules/<dataset>.py`) only says where its files are, how to read rows and which
labels exist; this module does the rest identically for all of them, so every dataset gets the same cleaning report,
leak-free splits and token cache.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch.utils.data import Dataset

from datamodules.augment import Augmentation
from datamodules.cleaning import CleaningReport, RawExamples, clean
from datamodules.split_loaders import SplitDataLoaders
from datamodules.splitting import (
    SPLIT_ALIASES,
    SPLITS,
    stratified_folds,
    stratified_split,
    stratified_subsample,
)
from experiments.core import fingerprints, token_cache
from experiments.core.errors import DataError

# (prepared-data key, lazy train texts) -> tokenizer. The `tiny` backbone trains its tokenizer on the
# train split, so the texts are only computed when the tokenizer is not cached yet.
TokenizerLoader = Callable[[str, Callable[[], list[str]]], Any]

_NOT_DATA_SHAPING = {"batch_size", "eval_batch_size", "num_workers"}
PREPARED_VERSION = "prepared-splits-v1"  # bump when PreparedSplits changes shape


@dataclass
class PreparedSplits:
    texts: dict[str, list[str]]
    labels: dict[str, list[str]]
    label_names: list[str]
    report: CleaningReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "labels": self.labels,
            "label_names": self.label_names,
            "report": self.report.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreparedSplits:
        return cls(
            texts=d["texts"],
            labels=d["labels"],
            label_names=d["label_names"],
            report=CleaningReport.from_dict(d["report"]),
        )


class TokenizedSplit(Dataset):
    """Token ids padded to the split's longest text; batches are trimmed to their own longest.

    `labels` are class ids (classification) or values (regression); `extra` holds per-example
    tensors that go into every batch as they are (e.g. numeric `features`).
    """

    def __init__(
        self,
        input_ids: torch.Tensor,
        lengths: torch.Tensor,
        labels: torch.Tensor,
        extra: dict[str, torch.Tensor] | None = None,
    ):
        self.input_ids, self.lengths, self.labels = input_ids, lengths, labels
        self.extra = extra or {}

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, idx: list[int]) -> dict[str, torch.Tensor]:
        ix = torch.as_tensor(idx, dtype=torch.long)
        lens = self.lengths[ix].long()
        width = int(lens.max())
        return {
            "input_ids": self.input_ids[ix, :width].long(),
            "attention_mask": (torch.arange(width)[None, :] < lens[:, None]).long(),
            "labels": self.labels[ix],
            **{k: v[ix] for k, v in self.extra.items()},
        }


class TextClassificationDataModule(SplitDataLoaders):
    """The DataModule of every text data set: `setup` produces `train/val/test` TokenizedSplits and
    `label_names` from the data set's config (`cfg.source_files`, `cfg.read`, `cfg.allowed_labels`).

    With `augment` set, the train split is the original texts followed by their augmented copies
    (`datamodules/augment.py`); `train_originals` says how many rows are originals. With `fold` =
    (k, K) set, train and val are pooled and cut into K stratified folds: fold k is val, the rest
    train; test is untouched."""

    augment: Augmentation | None = None
    fold: tuple[int, int] | None = None

    def __init__(self, cfg: Any, tokenizer_loader: TokenizerLoader, console: Console | None = None):
        super().__init__()
        self.cfg = cfg
        self.tokenizer_loader = tokenizer_loader
        self.console = console or Console()
        self.tokenizer: Any = None
        self.report: CleaningReport | None = None
        self.label_names: list[str] = []
        self.splits: dict[str, TokenizedSplit] = {}
        self.cache_hit: bool | None = None
        self.data_fingerprint = ""
        self.tokenizer_fingerprint = ""
        self.cache_key = ""
        self._prepared: PreparedSplits | None = None
        self._prep_key = ""
        self.meta: dict[str, Any] = {}
        self.train_originals = 0

    # --- the data set's own parts ----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def source_name(self) -> str:
        return self.cfg.source_name

    def source_files(self) -> list[Path]:
        return self.cfg.source_files()

    def read(self) -> RawExamples:
        return self.cfg.read(self.source_files())

    # --- what the task's target looks like (classification here; regression overrides) --------
    def strata(self, labels: list[str]) -> list[str]:
        """The groups that subsampling and splitting keep in proportion: the class labels."""
        return labels

    def label_set(self, labels: list[str], allowed: list[str] | None) -> list[str]:
        return list(allowed) if allowed is not None else sorted(set(labels))

    def encode_labels(self, labels: list[str], names: list[str]) -> dict[str, torch.Tensor]:
        """Tensors for one split: `labels` (and any extra per-example tensors)."""
        index = {name: i for i, name in enumerate(names)}
        return {"labels": torch.tensor([index[lab] for lab in labels], dtype=torch.int64)}

    def describe_labels(self, labels: list[str]) -> dict[str, Any]:
        """What the cache metadata says about one split's labels (class counts here)."""
        return dict(sorted(Counter(labels).items()))

    def extra_meta(self, prep: PreparedSplits) -> dict[str, Any]:
        """More facts for the cache metadata (`self.meta` after setup), e.g. train-split statistics."""
        return {}

    # --- shared pipeline ---------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.source_files()

    def options(self) -> dict[str, Any]:
        return self.cfg.model_dump(mode="json", exclude=_NOT_DATA_SHAPING)

    def prep_key(self) -> str:
        """The key of everything before tokenising: the data's bytes, the cleaning and split options
        (not max_length) and the fold. Sets `data_fingerprint`."""
        if not self._prep_key:
            self.data_fingerprint = fingerprints.files_fingerprint(self.source_files())
            opts = self.options()
            opts.pop("max_length")
            key = fingerprints.fingerprint("prepared", self.name, self.data_fingerprint, opts)
            if self.fold is not None:  # the fold's train split (and the `tiny` tokenizer built from it)
                key = fingerprints.fingerprint(key, "fold", *self.fold)
            self._prep_key = key
        return self._prep_key

    def prepared(self) -> PreparedSplits:
        """Read, clean, subsample and split: once per `prep_key` on a machine. The result is kept in
        the token cache, and a process that finds another one building it waits for it (a cold sweep's
        baseline and its workers, or two workers, clean the same file once). Not needed on a token
        cache hit."""
        if self._prepared is not None:
            return self._prepared
        key = fingerprints.fingerprint(PREPARED_VERSION, self.prep_key())
        with token_cache.building(key):
            cached = token_cache.load(key)
            if cached is not None:
                self._prepared = PreparedSplits.from_dict(cached.meta["prepared"])
            else:
                self._prepared = self._clean_and_split()
                token_cache.save(key, {}, {"prepared": self._prepared.to_dict()})
        return self._prepared

    def _clean_and_split(self) -> PreparedSplits:
        cfg = self.cfg
        raw = self.read()
        allowed = raw.allowed if raw.allowed is not None else self.cfg.allowed_labels()
        data, report = clean(
            raw,
            allowed,
            self.source_name,
            drop_duplicates=cfg.drop_duplicates,
            drop_conflicts=cfg.drop_conflicts,
            duplicates_by_label=self.cfg.duplicates_by_label,
        )
        if not data.texts:
            raise DataError(
                f"{self.source_name}: no examples left after cleaning ({report.summary()}). "
                "Check the text and label columns, the allowed labels and the file's encoding."
            )
        order = list(range(len(data.texts)))
        if data.split is not None:
            assignment = []
            for i, s in enumerate(data.split):
                assignment.append(SPLIT_ALIASES.get(str(s).strip().lower(), ""))
            if bad := sorted({data.split[i] for i, a in enumerate(assignment) if not a}):
                raise DataError(
                    f"{self.source_name}: split column has values {bad[:5]} that are not train/val/test."
                )
        else:
            strata = self.strata(data.labels)
            if cfg.subsample is not None:
                order = stratified_subsample(strata, cfg.subsample, cfg.split_seed)
            assignment = stratified_split(
                [strata[i] for i in order], cfg.val_fraction, cfg.test_fraction, cfg.split_seed
            )
        if data.split is not None and cfg.subsample is not None:
            keep = set(stratified_subsample(self.strata(data.labels), cfg.subsample, cfg.split_seed))
            pairs = [(i, a) for i, a in zip(order, assignment) if i in keep]
            order, assignment = [p[0] for p in pairs], [p[1] for p in pairs]
        texts: dict[str, list[str]] = {s: [] for s in SPLITS}
        labels_by: dict[str, list[str]] = {s: [] for s in SPLITS}
        for i, split in zip(order, assignment):
            texts[split].append(data.texts[i])
            labels_by[split].append(data.labels[i])
        if self.fold is not None:
            texts, labels_by = self._fold_of(texts, labels_by, *self.fold)
        empty = [s for s in SPLITS if not texts[s]]
        if empty:
            raise DataError(
                f"{self.source_name}: split(s) {', '.join(empty)} are empty "
                f"({', '.join(f'{s}={len(texts[s])}' for s in SPLITS)}); use more data or larger fractions."
            )
        names = self.label_set(data.labels, allowed)
        return PreparedSplits(texts=texts, labels=labels_by, label_names=names, report=report)

    def _fold_of(
        self, texts: dict[str, list[str]], labels: dict[str, list[str]], k: int, folds: int
    ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        pool_t, pool_l = texts["train"] + texts["val"], labels["train"] + labels["val"]
        try:
            val = set(stratified_folds(self.strata(pool_l), folds, self.cfg.split_seed)[k])
        except ValueError as exc:
            raise DataError(f"{self.source_name}: eval.folds {folds}: {exc}") from None
        keep = [i for i in range(len(pool_t)) if i not in val]
        return (
            {
                "train": [pool_t[i] for i in keep],
                "val": [pool_t[i] for i in sorted(val)],
                "test": texts["test"],
            },
            {
                "train": [pool_l[i] for i in keep],
                "val": [pool_l[i] for i in sorted(val)],
                "test": labels["test"],
            },
        )

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        max_length = self.options()["max_length"]
        prep_key = self.prep_key()
        self.tokenizer = self.tokenizer_loader(prep_key, lambda: self.prepared().texts["train"])
        self.tokenizer_fingerprint = fingerprints.tokenizer_fingerprint(self.tokenizer)
        self.cache_key = fingerprints.fingerprint(prep_key, self.tokenizer_fingerprint, max_length)
        if self.augment is not None:  # the tokenizer is built from the originals; the tokens differ
            self.cache_key = fingerprints.fingerprint(self.cache_key, "augment", self.augment.options())

        cached = token_cache.load(self.cache_key)
        self.cache_hit = cached is not None
        if cached is None:
            cached = self._tokenize_and_store(max_length)
        meta = cached.meta
        self.label_names = meta["label_names"]
        self.report = CleaningReport.from_dict(meta["report"])
        for s in SPLITS:
            own = {k.split(".", 1)[1]: v for k, v in cached.tensors.items() if k.startswith(f"{s}.")}
            self.splits[s] = TokenizedSplit(own.pop("input_ids"), own.pop("lengths"), own.pop("labels"), own)
        self.meta = meta
        self.train_originals = (meta.get("augment") or {}).get("originals", len(self.splits["train"]))
        self.print_report()

    def _tokenize_and_store(self, max_length: int) -> token_cache.CachedSplits:
        prep = self.prepared()
        pad = self.tokenizer.pad_token_id or 0
        tensors: dict[str, torch.Tensor] = {}
        counts: dict[str, dict[str, int]] = {}
        texts, labels = dict(prep.texts), dict(prep.labels)
        if self.augment is not None:
            texts["train"] = texts["train"] + self.augment.copies_of(texts["train"])
            labels["train"] = labels["train"] * (1 + self.augment.copies)
        for s in SPLITS:
            enc = self.tokenizer(
                texts[s],
                truncation=True,
                max_length=max_length,
                padding=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
            lengths = torch.tensor([len(e) for e in enc], dtype=torch.int32)
            ids = torch.full((len(enc), int(lengths.max())), pad, dtype=torch.int32)
            for row, e in enumerate(enc):
                ids[row, : len(e)] = torch.tensor(e, dtype=torch.int32)
            tensors[f"{s}.input_ids"] = ids
            tensors[f"{s}.lengths"] = lengths
            for key, value in self.encode_labels(labels[s], prep.label_names).items():
                tensors[f"{s}.{key}"] = value
            counts[s] = self.describe_labels(labels[s])
        meta = {
            "label_names": prep.label_names,
            "report": prep.report.to_dict(),
            "class_counts": counts,
            "data_fingerprint": self.data_fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "max_length": max_length,
            "options": self.options(),
            **(
                {"augment": {**self.augment.options(), "originals": len(prep.texts["train"])}}
                if self.augment
                else {}
            ),
            **self.extra_meta(prep),
        }
        token_cache.save(self.cache_key, tensors, meta)
        return token_cache.CachedSplits(tensors=tensors, meta=meta)

    def print_report(self) -> None:
        assert self.report is not None
        sizes = ", ".join(f"{s} {len(self.splits[s])}" for s in SPLITS)
        self.console.print(
            self.report.table(
                f"splits: {sizes}; labels: {', '.join(self.label_names)}",
                " (from token cache)" if self.cache_hit else "",
            )
        )
