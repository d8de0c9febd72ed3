"""`train(cfg) -> metrics`: the one entry that `ecomlab run`, every sweep trial and `reproduce` call.

It chooses how the experiment is trained: one run on the config's split
(`experiments.run.single`), or under `eval.folds` one run a fold (`experiments.run.folds`), and
returns the run's final metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.config.schema import ExperimentConfig


def train(
    cfg: ExperimentConfig,
    runs_dir: str | Path | None = None,
    *,
    out_dir: Path | None = None,
    console: Console | None = None,
    extra_callbacks: list[Any] | None = None,
    extra_config: dict[str, Any] | None = None,
    test: bool = True,
) -> dict[str, Any]:
    """Fit, pick the best checkpoint by `trainer.monitor`, test it, and write the run record.

    Args:
        cfg: a validated experiment config.
        runs_dir: folder of run records (default `$ECOMLAB_RUNS` or `./runs`).
        out_dir: write the record here instead of `runs_dir/<experiment_id>` (used by `reproduce`).
        console: where progress and tables go.
        extra_callbacks: more Lightning callbacks (sweeps add their pruning reporter here; under
            cross-validation one with `on_fold_end` hears each fold instead of each epoch).
        extra_config: more top-level W&B config keys (sweeps add the trial's parameters).
        test: evaluate the test split (a sweep defers it: it tests its best trials once, at its end,
            through `experiments.run.final_test`).

    Returns:
        The final metrics: `val/*` and `test/*` of the best checkpoint (of its int8 copy with
        `compress.int8`, fp32's then as `fp32/*`; under `eval.folds` the mean over the folds and its
        `_std`), the task's final metrics (`val/f1_best`, a threshold chosen on val), parameter
        counts, sparsity, served latency at batch 1 and 32, timings.
    """
    if cfg.eval.folds > 1:
        from experiments.run.folds import train_folds

        return train_folds(cfg, runs_dir, out_dir, console, list(extra_callbacks or []), extra_config, test)
    from experiments.run.single import train_one

    return train_one(
        cfg,
        runs_dir,
        out_dir=out_dir,
        console=console,
        extra_callbacks=extra_callbacks,
        extra_config=extra_config,
        test=test,
    )
