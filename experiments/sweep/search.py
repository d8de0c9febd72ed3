"""The sampler and the pruner of a sweep, built from its file."""

from __future__ import annotations

from typing import Any

from experiments.sweep.file import Sweep
from experiments.sweep.space import grid_space


def sampler(sw: Sweep, seed: int) -> Any:
    """The file's Optuna sampler, seeded with `seed` (each worker's own: see `study.open_study`)."""
    import optuna

    s = sw.spec.sampler
    kind, startup = s.type, s.n_startup_trials
    kw: dict[str, Any] = {"seed": seed}
    if kind in ("tpe", "gp", "cmaes") and startup is not None:
        kw["n_startup_trials"] = startup
    if kind == "tpe":  # a conditional space samples each branch's parameters as their own group
        return optuna.samplers.TPESampler(multivariate=True, group=sw.conditional, **kw)
    if kind == "random":
        return optuna.samplers.RandomSampler(**kw)
    if kind == "gp":
        return optuna.samplers.GPSampler(**kw)
    if kind == "cmaes":
        return optuna.samplers.CmaEsSampler(**kw)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(**kw)
    if kind == "grid":
        return optuna.samplers.GridSampler(grid_space(sw.searched), seed=seed)
    raise AssertionError(kind)


def pruner(sw: Sweep, max_reports: int | str) -> Any:
    """The file's Optuna pruner; `max_reports` is the most reports a trial makes (its epochs, or its
    folds under `eval.folds`), Hyperband's max_resource when the file says `auto`."""
    import optuna

    pr = sw.spec.pruner
    if pr.type == "hyperband":
        max_resource = max_reports if pr.max_resource == "auto" else pr.max_resource
        return optuna.pruners.HyperbandPruner(
            min_resource=pr.min_resource, max_resource=max_resource, reduction_factor=pr.reduction_factor
        )
    if pr.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=pr.n_startup_trials, n_warmup_steps=pr.n_warmup_steps
        )
    if pr.type == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=pr.min_resource, reduction_factor=pr.reduction_factor
        )
    return optuna.pruners.NopPruner()
