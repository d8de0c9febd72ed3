"""k-fold cross-validation (`eval.folds: K`): one model per fold, the run's metrics their mean.

Train and val are pooled and cut into K stratified folds (test stays held out; see
`TextClassificationDataModule.fold`). Fold k trains a normal run, recorded complete under
`runs/<id>/folds/<k>/` (by `experiments.run.single.train_one`), with fold k as its val split. The run's own `metrics.json` then holds

- every `val/*` and `test/*` metric as the mean over the folds, and its standard deviation as
  `<metric>_std` (a decision threshold is not averaged: it belongs to one model);
- everything else (thresholds, parameter counts, latency, epochs) from the *chosen* fold, the one
  with the best monitored value, whose weights are the run's `model.safetensors` (what `export` and
  `serve` ship), with `cv/folds` and `cv/chosen_fold`; `time/*` are summed.

After each fold, the callbacks that have `on_fold_end(fold, metrics of the folds so far)` are called
(a sweep's pruner reports the running mean of its metric at step = fold, so Hyperband can stop a bad
trial after one fold); the per-epoch reports of a single run are not made inside the folds.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.config.ids import experiment_id
from experiments.config.schema import ExperimentConfig, resolved
from experiments.results import run_record


def is_averaged(name: str) -> bool:
    return name.startswith(("val/", "test/", "fp32/")) and "threshold" not in name


def aggregate(per_fold: list[dict[str, Any]], monitor: str, mode: str) -> tuple[dict[str, Any], int]:
    """(the run's metrics, the chosen fold) from each fold's metrics."""
    values = [m[monitor] for m in per_fold]
    chosen = values.index(max(values) if mode == "max" else min(values))
    out = dict(per_fold[chosen])
    for key in per_fold[0]:
        column = [m.get(key) for m in per_fold]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in column):
            continue
        if is_averaged(key):
            out[key] = statistics.fmean(column)
            out[f"{key}_std"] = statistics.pstdev(column)
        elif key.startswith("time/"):
            out[key] = round(sum(column), 3)
    out.update({"cv/folds": len(per_fold), "cv/chosen_fold": chosen})
    return out, chosen


def train_folds(
    cfg: ExperimentConfig,
    runs_dir: str | Path | None,
    out_dir: Path | None,
    console: Console | None,
    extra_callbacks: list[Any],
    extra_config: dict[str, Any] | None,
    test: bool = True,
) -> dict[str, Any]:
    """`train(cfg)` for `eval.folds` > 1: the folds one after another, then the run's record (each
    fold tested unless `test` is off: a sweep tests its best trial once, at its end)."""
    from experiments.core.assets import sha256_file
    from experiments.results import tracking
    from experiments.run.single import train_one

    console = console or Console()
    exp_id = experiment_id(cfg)
    out = out_dir or run_record.record_path(run_record.runs_root(runs_dir), exp_id)
    folds = cfg.eval.folds
    config = resolved(cfg)
    record = run_record.RunRecordWriter(
        out,
        exp_id,
        config,
        {
            "seeds": {"seed": cfg.seed, "split_seed": cfg.data.split_seed},
            "deterministic": cfg.trainer.deterministic,
        },
    )
    per_fold_hooks = [c for c in extra_callbacks if hasattr(c, "on_fold_end")]
    per_epoch = [c for c in extra_callbacks if not hasattr(c, "on_fold_end")]
    untracked = cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"mode": "disabled"})})
    monitor, mode = cfg.trainer.monitor, cfg.trainer.mode
    with record.recording():
        shutil.rmtree(out / "folds", ignore_errors=True)
        logger = tracking.make_logger(
            cfg.tracking, exp_id, out, {**config, **(extra_config or {})}, [cfg.data.dataset, cfg.task, "cv"]
        )
        record.logger = logger
        record.update(tracking=tracking.record_facts(cfg.tracking, logger))
        per_fold: list[dict[str, Any]] = []
        for k in range(folds):
            console.print(f"[bold]fold {k + 1} of {folds}[/]")
            metrics = train_one(
                untracked,
                runs_dir,
                out_dir=out / "folds" / str(k),
                console=console,
                extra_callbacks=per_epoch,
                fold=(k, folds),
                test=test,
            )
            per_fold.append(metrics)
            if logger is not None:
                logger.experiment.log({f"fold/{monitor}": metrics[monitor], "fold": k})
            record.update(
                folds=[
                    {"fold": i, monitor: m[monitor], "record": f"folds/{i}"} for i, m in enumerate(per_fold)
                ]
            )
            for hook in per_fold_hooks:
                hook.on_fold_end(k, per_fold)  # may raise TrialPruned: the record says pruned, folds kept
        metrics, chosen = aggregate(per_fold, monitor, mode)
        inner = run_record.read_dir(out / "folds" / str(chosen))
        record.update(
            **{
                k: inner.manifest[k]
                for k in ("assets", "devices", "environment", "data", "tokenizer", "distill")
                if k in inner.manifest
            },
            cv={"folds": folds, "chosen_fold": chosen},
        )
        weights = out / "folds" / str(chosen) / "model.safetensors"
        if weights.is_file():
            shutil.copyfile(weights, out / "model.safetensors")
            record.update(weights_sha256=sha256_file(out / "model.safetensors"))
        _print(console, per_fold, metrics, monitor, chosen)
        record.complete(metrics)
        return metrics


def _print(
    console: Console, per_fold: list[dict[str, Any]], metrics: dict[str, Any], monitor: str, chosen: int
) -> None:
    each = ", ".join(f"{m[monitor]:.4f}" for m in per_fold)
    console.print(
        f"cross-validation: {monitor} {metrics[monitor]:.4f} ± {metrics[monitor + '_std']:.4f} over "
        f"{len(per_fold)} folds ({each}); fold {chosen} is the run's model"
    )
