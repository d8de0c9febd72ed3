"""`train(cfg) -> metrics`: the one entry that `ecomlab run`, every sweep trial and `reproduce` call."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments import run_record
from experiments.config import ExperimentConfig, experiment_id, resolved

# Metrics that measure the machine, not the model: reproduce does not require them to match.
TIMING_PREFIX = "time/"
TIMED_METRICS = ("model/latency_ms", "model/latency_ms_b32")
# Seconds a run spends timing each batch size (at least 3 passes after one warm-up; `ecomlab export`
# and bench/ time 10 passes after 2)
LATENCY_BUDGET_S = 0.1


def is_timing(name: str) -> bool:
    return name.startswith(TIMING_PREFIX) or name in TIMED_METRICS


def _seed_and_determinism(cfg: ExperimentConfig) -> None:
    import lightning.pytorch as pl
    import torch

    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)


def _asset_hashes(cfg: ExperimentConfig) -> dict[str, str]:
    from experiments.core.assets import ASSETS
    from experiments.registry import TASKS

    names = list(type(cfg.data).assets)
    if TASKS[cfg.task].text_encoder:
        names.append(cfg.model.backbone)
    return {n: ASSETS[n].sha256 for n in names if n in ASSETS}


def _load_best(module: Any, path: str) -> int | None:
    """Load the best checkpoint's weights (weights_only) into `module`; return its epoch (0-based).

    Checkpoints written while pruning hold `weight_orig` and `weight_mask`; they are folded into
    plain (permanently pruned) weights, as the module has them after training.
    """
    import torch

    if not path:
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt["state_dict"]
    for key in [k for k in state if k.endswith("_mask") and k[: -len("_mask")] + "_orig" in state]:
        base = key[: -len("_mask")]
        orig, mask = state.pop(base + "_orig"), state.pop(key)
        state[base] = orig * mask.to(orig.dtype)
    module.load_state_dict(state, strict=True)
    return int(ckpt.get("epoch", -1))


def _latency_ms(module: Any, dm: Any, batch: int) -> float:
    """Served latency: eval mode, `batch` copies of a test example stretched to the data's
    `max_length` (after int8 when it is on), within `LATENCY_BUDGET_S`; see `served.median_ms`."""
    from lightning_modules.served import median_ms

    example = {k: v.to(module.device) for k, v in dm.splits["test"].collate([0]).items()}
    module.eval()
    return median_ms(module.forward_batch, example, batch, getattr(dm.cfg, "max_length", None),
                     budget_s=LATENCY_BUDGET_S)  # fmt: skip


def _int8_metrics(module: Any, dm: Any) -> tuple[dict[str, float], float]:
    """Quantise `module.model` (dynamic int8, in place) and evaluate val and test on one CPU device;
    returns the metrics and the size in MB of the int8 state dict."""
    import io
    import warnings

    import lightning.pytorch as pl
    import torch

    from lightning_modules.served import quantize_int8

    module.model = quantize_int8(module.model)
    buf = io.BytesIO()
    torch.save(module.model.state_dict(), buf)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(num_workers|does not have many workers).*")
        (val,) = trainer.validate(module, datamodule=dm, verbose=False)
        (test,) = trainer.test(module, datamodule=dm, verbose=False)
    dm.trainer = None
    return {k: float(v) for k, v in {**val, **test}.items()}, len(buf.getvalue()) / 1e6


def global_rank(cfg: ExperimentConfig) -> int:
    """This process's rank in a multi-device run: 0 alone, or as Lightning's launcher, torchrun or
    SLURM set it (RANK, else NODE_RANK x devices + LOCAL_RANK)."""
    env = os.environ
    if cfg.trainer.devices * cfg.trainer.num_nodes == 1:
        return 0
    if env.get("RANK"):
        return int(env["RANK"])
    return int(env.get("NODE_RANK", 0)) * cfg.trainer.devices + int(env.get("LOCAL_RANK", 0))


def _build_trainer(cfg: ExperimentConfig, module: Any, dm: Any, out: Path, console: Console, loggers: list[Any],
                   extra_callbacks: list[Any]) -> tuple[Any, Any]:  # fmt: skip
    """The Lightning Trainer of a run and its best-checkpoint callback."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar

    from experiments.pruning import ScheduledPruning

    t = cfg.trainer
    checkpoint = ModelCheckpoint(dirpath=out / "checkpoints", filename="best", monitor=t.monitor, mode=t.mode,
                                 save_top_k=1, save_weights_only=True, auto_insert_metric_name=False)  # fmt: skip
    callbacks: list[Any] = [checkpoint, EarlyStopping(monitor=t.monitor, mode=t.mode, patience=t.patience),
                            RichProgressBar(console_kwargs={"file": console.file})]  # fmt: skip
    if cfg.prune.ratio > 0:
        callbacks.append(ScheduledPruning(module.prunable(), cfg.prune.ratio, cfg.prune.epochs))
    callbacks.extend(extra_callbacks)
    batches = -(-len(dm.splits["train"]) // cfg.data.batch_size)
    if t.devices * t.num_nodes > 1:
        import warnings

        # every logged val/test value is a torchmetrics object reduced over the ranks (see
        # task_module), so Lightning's advice to add sync_dist would only reduce it twice
        warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")
    trainer = pl.Trainer(
        max_epochs=t.max_epochs, accelerator=t.accelerator, devices=t.devices, precision=t.precision,
        strategy=t.strategy, num_nodes=t.num_nodes, accumulate_grad_batches=t.accumulate_grad_batches,
        use_distributed_sampler=False,  # the DataModule shards itself: val/test see each example once
        deterministic=t.deterministic, logger=loggers, callbacks=callbacks, default_root_dir=str(out),
        limit_train_batches=t.limit_train_batches, limit_val_batches=t.limit_val_batches,
        gradient_clip_val=cfg.optim.grad_clip, log_every_n_steps=max(1, min(10, batches)), enable_model_summary=False,
    )  # fmt: skip
    return trainer, checkpoint


class _Phases:
    """Seconds spent in each named phase of a run, as `time/<name>_s` metrics."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def metrics(self) -> dict[str, float]:
        return {f"{TIMING_PREFIX}{k}_s": round(v, 3) for k, v in self.seconds.items()}


def _fit_and_evaluate(trainer: Any, checkpoint: Any, module: Any, dm: Any, extra_callbacks: list[Any],
                      clock: _Phases) -> tuple[dict[str, float], int | None, float]:  # fmt: skip
    """Fit, load the best checkpoint; return its val/* and test/* metrics, its epoch, the fit seconds."""
    fit_start = time.time()
    module.keep_predictions()  # the analysis after training reads the val/test passes' outputs
    try:
        trainer.fit(module, datamodule=dm)
    except SystemExit as exc:  # Lightning ends a Ctrl-C with sys.exit(1) after a graceful shutdown
        raise KeyboardInterrupt from exc
    fit_s = time.time() - fit_start
    if trainer.interrupted:
        raise KeyboardInterrupt
    for c in extra_callbacks:  # on K devices a pruned trial stops every rank, then raises TrialPruned
        if hasattr(c, "check_pruned"):
            c.check_pruned()
    # Per-epoch callbacks from the caller (a sweep's pruning reporter) must not see the final
    # evaluation passes below as one more epoch.
    trainer.callbacks = [c for c in trainer.callbacks if not any(c is x for x in extra_callbacks)]
    with clock("evaluate"):
        best_epoch = _load_best(module, checkpoint.best_model_path)
        # every val/ metric of the chosen checkpoint (not only the monitored one), then test. When
        # the best is the last epoch, fit's last validation pass measured these very weights: its
        # metrics and kept outputs are the ones a second pass would give, bit for bit.
        last = trainer.current_epoch - 1
        val = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        if not (val and best_epoch == last and _last_pass_is_final(trainer)):
            (val,) = trainer.validate(module, datamodule=dm, verbose=False)
        (test,) = trainer.test(module, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in sorted({**val, **test}.items())}, best_epoch, fit_s


def _last_pass_is_final(trainer: Any) -> bool:
    """Whether fit's last validation pass saw the weights fit ended with: it ran after the last
    training epoch (not skipped by `check_val_every_n_epoch`), on one device, over the whole split,
    and nothing changes weights at an epoch's end (scheduled pruning does)."""
    from experiments.pruning import ScheduledPruning

    return (
        trainer.world_size == 1
        and isinstance(trainer.limit_val_batches, float)
        and trainer.limit_val_batches == 1.0
        and trainer.check_val_every_n_epoch == 1
        and not any(isinstance(c, ScheduledPruning) for c in trainer.callbacks)
    )


def train(cfg: ExperimentConfig, runs_dir: str | Path | None = None, *, out_dir: Path | None = None,
          console: Console | None = None, extra_callbacks: list[Any] | None = None,
          extra_config: dict[str, Any] | None = None, fold: tuple[int, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """Fit, pick the best checkpoint by `trainer.monitor`, test it, and write the run record.

    Building the objects is here; the record (config, manifest, status, failure, metrics) is written
    by `run_record.RunRecordWriter`.

    Args:
        cfg: a validated experiment config.
        runs_dir: folder of run records (default `$ECOMLAB_RUNS` or `./runs`).
        out_dir: write the record here instead of `runs_dir/<experiment_id>` (used by `reproduce`).
        console: where progress and tables go.
        extra_callbacks: more Lightning callbacks (sweeps add their pruning reporter here).
        extra_config: more top-level W&B config keys (sweeps add the trial's parameters).
        fold: (k, K): train on cross-validation fold k of K (`experiments.cross_validation` calls
            this for each fold when `eval.folds` > 1).

    Returns:
        The final metrics: `val/*` and `test/*` of the best checkpoint (of its int8 copy with
        `compress.int8`, fp32's then as `fp32/*`), the task's final metrics (`val/f1_best`, a
        threshold chosen on val), parameter counts, sparsity, served latency at batch 1 and 32,
        timings.
    """
    from lightning.pytorch.loggers import CSVLogger
    from safetensors.torch import save_model

    from experiments import tracking
    from experiments.core.assets import sha256_file
    from experiments.registry import build_datamodule, build_module
    from lightning_modules.backbones import count_parameters

    console = console or Console()
    extra_callbacks = list(extra_callbacks or [])
    if cfg.eval.folds > 1 and fold is None:
        from experiments.cross_validation import train_folds

        return train_folds(cfg, runs_dir, out_dir, console, extra_callbacks, extra_config)
    started = time.time()
    exp_id = experiment_id(cfg)
    out = out_dir or run_record.record_path(run_record.runs_root(runs_dir), exp_id)
    config = resolved(cfg)
    # On K devices Lightning starts K-1 more processes that run this same function; only rank 0
    # writes the record, the W&B run and the files after training.
    primary = global_rank(cfg) == 0
    record = run_record.RunRecordWriter(out, exp_id, config, {
        "seeds": {"seed": cfg.seed, "split_seed": cfg.data.split_seed},
        "deterministic": cfg.trainer.deterministic,
        "assets": _asset_hashes(cfg),
        "devices": {"accelerator": cfg.trainer.accelerator, "devices": cfg.trainer.devices,
                    "num_nodes": cfg.trainer.num_nodes, "strategy": cfg.trainer.strategy},
        **({"fold": {"fold": fold[0], "folds": fold[1]}} if fold else {}),
    }, enabled=primary)  # fmt: skip

    clock = _Phases()  # where a run's time goes: time/* in metrics.json (not compared by reproduce)
    with record.recording():
        _seed_and_determinism(cfg)
        dm = build_datamodule(cfg, console=console, fold=fold)
        dm.prepare_data()
        with clock("data_prep"):
            dm.setup("fit")
        if cfg.distill.teacher is not None:  # the soft labels ride in the train batches
            from experiments.distill import attach_teacher

            record.update(distill=attach_teacher(cfg, dm, run_record.runs_root(runs_dir), console))

        # Re-seed so that model init does not depend on whether data came from the cache.
        _seed_and_determinism(cfg)
        with clock("model_build"):
            module = build_module(cfg, dm)
            module.configure(cfg)  # distillation, adversarial training, label smoothing, layer-wise lr decay
        trainable, total = count_parameters(module.model)
        record.update(
            environment=run_record.environment(),
            data={"dataset": cfg.data.dataset, "fingerprint": dm.data_fingerprint, "cache_key": dm.cache_key,
                  "cache_hit": dm.cache_hit, "splits": dm.split_sizes(), "labels": dm.label_names,
                  "cleaning": dm.report.to_dict() if dm.report else None},
            tokenizer=({"fingerprint": dm.tokenizer_fingerprint, "source": str(dm.tokenizer.name_or_path)}
                       if dm.tokenizer is not None else None),
        )  # fmt: skip

        wandb_logger = None
        if primary:
            with clock("wandb_init"):
                wandb_logger = tracking.make_logger(
                    cfg.tracking,
                    exp_id,
                    out,
                    {**config, **(extra_config or {})},
                    [cfg.data.dataset, cfg.task],
                )
        record.logger = wandb_logger
        record.update(tracking=tracking.record_facts(cfg.tracking, wandb_logger))
        loggers: list[Any] = [CSVLogger(save_dir=str(out), name="", version="")]
        if wandb_logger is not None:
            loggers.append(wandb_logger)

        trainer, checkpoint = _build_trainer(cfg, module, dm, out, console, loggers, extra_callbacks)
        metrics, best_epoch, fit_s = _fit_and_evaluate(
            trainer, checkpoint, module, dm, extra_callbacks, clock
        )
        if not primary:
            return metrics  # the same reduced val/test metrics as rank 0's; nothing written
        dm.trainer = None  # after training, evaluate and measure on whole splits, not this rank's shard

        metrics.update(module.final_metrics())  # the best monitored value of training (fp32)
        metrics["model/sparsity"] = round(module.sparsity(), 6)
        fp32 = module.model
        with clock("analysis"):
            if cfg.compress.int8:  # what the trial reports is the int8 model's; fp32's stays as fp32/*
                int8, int8_mb = _int8_metrics(module, dm)
                metrics.update(
                    {f"fp32/{k}": v for k, v in metrics.items() if k.startswith(("val/", "test/"))}
                )
                metrics.update(int8)
                metrics["model/int8_size_mb"] = round(int8_mb, 3)
            metrics.update(module.evaluate(dm, out))  # thresholds, confusion matrix / residual PNG
        with clock("latency"):
            latency = {"model/latency_ms": round(_latency_ms(module, dm, 1), 3),
                       "model/latency_ms_b32": round(_latency_ms(module, dm, 32), 3)}  # fmt: skip
        metrics.update({
            "best_epoch": best_epoch,
            "epochs_trained": trainer.current_epoch,
            "model/trainable_params": trainable,
            "model/total_params": total,
            **latency,
        })  # fmt: skip
        module.model = fp32  # the saved weights are fp32 (`ecomlab export --int8` writes the int8 copy)
        with clock("weights"):
            if cfg.trainer.save_weights:
                save_model(module.model, str(out / "model.safetensors"))
                metrics["model/size_mb"] = round((out / "model.safetensors").stat().st_size / 1e6, 3)
                record.update(weights_sha256=sha256_file(out / "model.safetensors"))
            shutil.rmtree(out / "checkpoints", ignore_errors=True)  # the safetensors file replaces it
        metrics.update(clock.metrics())
        metrics.update({"time/fit_s": round(fit_s, 3), "time/total_s": round(time.time() - started, 3)})
        record.complete(metrics)  # adds time/record_s: the W&B finish and the last record files
        return metrics
