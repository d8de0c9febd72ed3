"""Deterministic stratified subsampling and train/val/test splitting from a seed."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def _by_label(labels: list[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels):
        groups[lab].append(i)
    return dict(sorted(groups.items()))


def stratified_subsample(labels: list[str], n: int, seed: int) -> list[int]:
    """Indices of `n` examples keeping label proportions (largest-remainder rounding), sorted."""
    if n >= len(labels):
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    groups = _by_label(labels)
    exact = {lab: n * len(ix) / len(labels) for lab, ix in groups.items()}
    take = {lab: int(v) for lab, v in exact.items()}
    for lab in sorted(exact, key=lambda k: exact[k] - take[k], reverse=True)[: n - sum(take.values())]:
        take[lab] += 1
    chosen: list[int] = []
    for lab, ix in groups.items():
        perm = rng.permutation(len(ix))[: take[lab]]
        chosen.extend(ix[j] for j in perm)
    return sorted(chosen)


def stratified_split(labels: list[str], val_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """Assign each example to train/val/test, per label, in the given proportions."""
    rng = np.random.default_rng(seed)
    assignment = ["train"] * len(labels)
    for _, ix in _by_label(labels).items():
        perm = [ix[j] for j in rng.permutation(len(ix))]
        n_test = int(round(len(ix) * test_fraction))
        n_val = int(round(len(ix) * val_fraction))
        if len(ix) >= 3:  # a rare class still shows up in val and test
            n_test, n_val = max(n_test, 1), max(n_val, 1)
        for i in perm[:n_test]:
            assignment[i] = "test"
        for i in perm[n_test : n_test + n_val]:
            assignment[i] = "val"
    return assignment


def stratified_folds(strata: list[str], k: int, seed: int) -> list[list[int]]:
    """`k` disjoint folds of the indices, each with the strata in proportion (scikit-learn's
    StratifiedKFold, shuffled by `seed`); every index is in exactly one fold."""
    from sklearn.model_selection import StratifiedKFold

    if len(strata) < k:
        raise ValueError(f"{len(strata)} train+val examples cannot make {k} folds")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(strata)), strata)
    return [sorted(int(i) for i in val) for _, val in folds]
