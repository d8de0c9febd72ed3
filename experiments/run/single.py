"""One run on one split: build the data and the model, fit, evaluate the best checkpoint, analyse it,
save its weights, and write the run record. `experiments.run.train.train` calls it (once, or once a
fold under cross-validation)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.config.ids import experiment_id
from experiments.config.schema import ExperimentConfig, resolved
from experiments.core.errors import OutOfMemory
from experiments.results import run_record
from experiments.run.build import build_trainer, global_rank, seed_everything
from experiments.run.timing import Phases

# Seconds a run spends timing each batch size (at least 3 passes after one warm-up; `ecomlab export`
# and bench/ time 10 passes after 2)
LATENCY_BUDGET_S = 0.1


def train_one(
    cfg: ExperimentConfig,
    runs_dir: str | Path | None = None,
    *,
    out_dir: Path | None = None,
    console: Console | None = None,
    extra_callbacks: list[Any] | None = None,
    extra_config: dict[str, Any] | None = None,
    fold: tuple[int, int] | None = None,
    test: bool = True,
) -> dict[str, Any]:
    """Fit, pick the best checkpoint by `trainer.monitor`, test it, and write the run record (the
    arguments are `train`'s). On K devices Lightning starts K-1 more processes that run this same
    function; only rank 0 writes the record, the W&B run and the files after training."""
    from lightning.pytorch.loggers import CSVLogger

    from experiments.results import tracking

    console = console or Console()
    extra_callbacks = list(extra_callbacks or [])
    started = time.time()
    exp_id = experiment_id(cfg)
    out = out_dir or run_record.record_path(run_record.runs_root(runs_dir), exp_id)
    config = resolved(cfg)
    primary = global_rank(cfg) == 0
    facts = {
        **_facts(cfg, fold),
        **({} if test else {"test": "deferred: a sweep tests its best trials once, at its end"}),
    }
    record = run_record.RunRecordWriter(out, exp_id, config, facts, enabled=primary)
    clock = Phases()  # where a run's time goes: time/* in metrics.json (not compared by reproduce)
    with record.recording():
        dm, module = _build(cfg, runs_dir, console, fold, record, clock)
        sizes = _parameter_counts(module)
        logger = None
        if primary:
            with clock("wandb_init"):
                tags = [cfg.data.dataset, cfg.task]
                logger = tracking.make_logger(
                    cfg.tracking, exp_id, out, {**config, **(extra_config or {})}, tags
                )
        record.logger = logger
        record.update(tracking=tracking.record_facts(cfg.tracking, logger))
        loggers = [CSVLogger(save_dir=str(out), name="", version=""), *([logger] if logger else [])]
        trainer, checkpoint = build_trainer(cfg, module, dm, out, console, loggers, extra_callbacks)
        metrics, best_epoch, fit_s = _fit_and_evaluate(
            trainer, checkpoint, module, dm, extra_callbacks, clock, test
        )
        if not primary:
            return metrics  # the same reduced val/test metrics as rank 0's; nothing written
        dm.trainer = None  # after training, evaluate and measure on whole splits, not this rank's shard
        latency = _add_analysis(cfg, module, dm, out, clock, metrics, test)
        metrics.update(
            {"best_epoch": best_epoch, "epochs_trained": trainer.current_epoch, **sizes, **latency}
        )
        metrics.update(_save_weights(cfg, module, out, record, clock))
        metrics.update(clock.metrics())
        metrics.update({"time/fit_s": round(fit_s, 3), "time/total_s": round(time.time() - started, 3)})
        metrics.update(_memory_measured(cfg, record))
        record.complete(metrics)  # adds time/record_s: the W&B finish and the last record files
        return metrics


def _facts(cfg: ExperimentConfig, fold: tuple[int, int] | None) -> dict[str, Any]:
    """What the manifest says about a run before it starts."""
    t = cfg.trainer
    return {
        "seeds": {"seed": cfg.seed, "split_seed": cfg.data.split_seed},
        "deterministic": t.deterministic,
        "assets": _asset_hashes(cfg),
        "devices": {
            "accelerator": t.accelerator,
            "devices": t.devices,
            "num_nodes": t.num_nodes,
            "strategy": t.strategy,
        },
        **({"fold": {"fold": fold[0], "folds": fold[1]}} if fold else {}),
    }


def _asset_hashes(cfg: ExperimentConfig) -> dict[str, str]:
    from experiments.config.registry import TASKS
    from experiments.core.assets import ASSETS

    names = list(type(cfg.data).assets)
    if TASKS[cfg.task].text_encoder:
        names.append(cfg.model.backbone)
    return {n: ASSETS[n].sha256 for n in names if n in ASSETS}


def _build(
    cfg: ExperimentConfig,
    runs_dir: str | Path | None,
    console: Console,
    fold: tuple[int, int] | None,
    record: run_record.RunRecordWriter,
    clock: Phases,
) -> tuple[Any, Any]:
    """The set-up DataModule (with the teacher's soft labels under `distill`) and the task's module
    with its knobs' training hooks; what they are goes into the manifest."""
    from experiments.config.registry import build_datamodule, build_module

    seed_everything(cfg)
    dm = build_datamodule(cfg, console=console, fold=fold)
    dm.prepare_data()
    with clock("data_prep"):
        dm.setup("fit")
    if cfg.distill.teacher is not None:  # the soft labels ride in the train batches
        from experiments.run.teacher import attach_teacher

        record.update(distill=attach_teacher(cfg, dm, run_record.runs_root(runs_dir), console))
    seed_everything(cfg)  # model init must not depend on whether the data came from the cache
    from lightning_modules import memory

    accelerator = cfg.trainer.accelerator
    memory.release_free_memory()  # an earlier trial's freed heap is not this run's runtime
    before_model_mb = memory.current_mb(accelerator)
    with clock("model_build"):
        module = build_module(cfg, dm)
    _memory_check(cfg, module, _longest(cfg, dm), before_model_mb, console, record)
    memory.reset_peak(accelerator)  # the peak measured after training is training's (see memory.estimate)
    record.update(
        environment=run_record.environment(),
        data={
            "dataset": cfg.data.dataset,
            "fingerprint": dm.data_fingerprint,
            "cache_key": dm.cache_key,
            "cache_hit": dm.cache_hit,
            "splits": dm.split_sizes(),
            "labels": dm.label_names,
            "cleaning": dm.report.to_dict() if dm.report else None,
        },
        tokenizer=(
            {"fingerprint": dm.tokenizer_fingerprint, "source": str(dm.tokenizer.name_or_path)}
            if dm.tokenizer is not None
            else None
        ),
    )
    return dm, module


def _longest(cfg: ExperimentConfig, dm: Any) -> int:
    """The widest batch training will see: its longest sequence (batches are padded to their
    longest, never past data.max_length); 1 for data that is not text."""
    train = getattr(dm, "splits", {}).get("train")
    lengths = getattr(train, "lengths", None)
    if lengths is None:
        return 1
    limit = getattr(cfg.data, "max_length", 1)
    return min(limit, int(lengths.max())) if len(lengths) else limit


def _memory_check(
    cfg: ExperimentConfig,
    module: Any,
    length: int,
    runtime_mb: float,
    console: Console,
    record: run_record.RunRecordWriter,
) -> None:
    """Estimate the run's peak memory before its first step, print it and keep it in the manifest, and
    refuse a run that cannot fit the device (`OutOfMemory`: in a sweep, a trial PRUNED for `oom`)."""
    from lightning_modules import memory

    m, t = cfg.model, cfg.trainer
    est = memory.estimate(
        module.model,
        cfg.data.batch_size,
        length,
        checkpointing=m.gradient_checkpointing,
        quantisation=m.quantize,
        runtime_mb=runtime_mb,
        activation_bytes=2 if t.precision in ("16-mixed", "bf16-mixed") else 4,
        cuda=memory.on_cuda(t.accelerator),
    )
    limit, what = memory.device_memory(cfg.trainer.accelerator)
    console.print(f"memory: {est.describe()}; {what}", highlight=False)
    record.update(memory={**est.to_dict(), "device_bytes": limit, "device": what})
    if limit and est.total > limit:
        raise OutOfMemory(
            f"oom: this run needs about {est.total / memory.MB:,.0f} MB at its peak ({est.describe()}), more than "
            f"{what}. Lower data.batch_size or data.max_length, set model.gradient_checkpointing, train LoRA "
            "(peft.r) instead of every weight, or pick a smaller backbone."
        )


def _memory_measured(cfg: ExperimentConfig, record: run_record.RunRecordWriter) -> dict[str, float]:
    """The run's peak memory beside the estimate made before training (MB): the process's resident
    peak on a CPU, CUDA's most allocated on a GPU."""
    from lightning_modules import memory

    estimate = (record.manifest.get("memory") or {}).get("total")
    what = "gpu" if memory.on_cuda(cfg.trainer.accelerator) else "rss"
    out = {f"memory/peak_{what}_mb": round(memory.peak_mb(cfg.trainer.accelerator), 1)}
    if estimate:
        out["memory/estimate_mb"] = round(estimate / memory.MB, 1)
    return out


def out_of_memory(exc: BaseException) -> bool:
    """Whether training failed for want of memory: CUDA's OOM, or the CPU allocator's."""
    text = str(exc)
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError)
        and any(
            k in text
            for k in ("out of memory", "CUDA out of memory", "can't allocate memory", "Cannot allocate")
        )
    )


def _parameter_counts(module: Any) -> dict[str, int]:
    from lightning_modules.backbones import count_parameters

    trainable, total = count_parameters(module.model)
    return {"model/trainable_params": trainable, "model/total_params": total}


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


def _fit_and_evaluate(
    trainer: Any,
    checkpoint: Any,
    module: Any,
    dm: Any,
    extra_callbacks: list[Any],
    clock: Phases,
    test: bool = True,
) -> tuple[dict[str, float], int | None, float]:
    """Fit, load the best checkpoint; return its val/* and (unless `test` is off) test/* metrics,
    its epoch, the fit seconds."""
    fit_start = time.time()
    module.keep_predictions()  # the analysis after training reads the val/test passes' outputs
    try:
        trainer.fit(module, datamodule=dm)
    except SystemExit as exc:  # Lightning ends a Ctrl-C with sys.exit(1) after a graceful shutdown
        raise KeyboardInterrupt from exc
    except Exception as exc:
        if out_of_memory(exc):
            raise OutOfMemory(f"oom: training ran out of memory: {str(exc).splitlines()[0][:300]}") from exc
        raise
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
        if not (val and best_epoch == last and last_pass_is_final(trainer)):
            (val,) = trainer.validate(module, datamodule=dm, verbose=False)
        tested = trainer.test(module, datamodule=dm, verbose=False)[0] if test else {}
    return {k: float(v) for k, v in sorted({**val, **tested}.items())}, best_epoch, fit_s


def last_pass_is_final(trainer: Any) -> bool:
    """Whether fit's last validation pass saw the weights fit ended with: it ran after the last
    training epoch (not skipped by `check_val_every_n_epoch`), on one device, over the whole split,
    and nothing changes weights at an epoch's end (scheduled pruning does)."""
    from experiments.run.pruning import ScheduledPruning

    return (
        trainer.world_size == 1
        and isinstance(trainer.limit_val_batches, float)
        and trainer.limit_val_batches == 1.0
        and trainer.check_val_every_n_epoch == 1
        and trainer.val_check_interval == 1.0  # with validations inside an epoch the best may be mid-epoch
        and not any(isinstance(c, ScheduledPruning) for c in trainer.callbacks)
    )


def _add_analysis(
    cfg: ExperimentConfig,
    module: Any,
    dm: Any,
    out: Path,
    clock: Phases,
    metrics: dict[str, Any],
    test: bool = True,
) -> dict[str, float]:
    """After training: the best monitored value, sparsity, under `compress.int8` the int8 model's val
    and test metrics in place of fp32's (kept as fp32/*), and (unless the test is deferred) the task's
    own analysis files on the test split; returns the served latency (of the int8 model when it is
    on). The module keeps its fp32 network afterwards (the saved weights are fp32)."""
    metrics.update(module.final_metrics())  # the best monitored value of training (fp32)
    metrics["model/sparsity"] = round(module.sparsity(), 6)
    fp32 = module.model
    with clock("analysis"):
        if cfg.compress.int8:  # what the trial reports is the int8 model's; fp32's stays as fp32/*
            int8, int8_mb = _int8_metrics(module, dm, test)
            metrics.update({f"fp32/{k}": v for k, v in metrics.items() if k.startswith(("val/", "test/"))})
            metrics.update(int8)
            metrics["model/int8_size_mb"] = round(int8_mb, 3)
        if test:
            metrics.update(module.evaluate(dm, out))  # thresholds, confusion matrix / residual PNG
    with clock("latency"):
        latency = {
            "model/latency_ms": round(_latency_ms(module, dm, 1), 3),
            "model/latency_ms_b32": round(_latency_ms(module, dm, 32), 3),
        }
    module.model = fp32  # `ecomlab export --int8` writes the int8 copy
    return latency


def _latency_ms(module: Any, dm: Any, batch: int) -> float:
    """Served latency: eval mode, `batch` copies of a test example stretched to the data's
    `max_length` (after int8 when it is on), within `LATENCY_BUDGET_S`; see `served.median_ms`."""
    from lightning_modules.served import median_ms

    example = {k: v.to(module.device) for k, v in dm.splits["test"].collate([0]).items()}
    module.eval()
    max_length = getattr(dm.cfg, "max_length", None)
    return median_ms(module.forward_batch, example, batch, max_length, budget_s=LATENCY_BUDGET_S)


def _int8_metrics(module: Any, dm: Any, test: bool = True) -> tuple[dict[str, float], float]:
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
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(num_workers|does not have many workers).*")
        (val,) = trainer.validate(module, datamodule=dm, verbose=False)
        tested = trainer.test(module, datamodule=dm, verbose=False)[0] if test else {}
    dm.trainer = None
    return {k: float(v) for k, v in {**val, **tested}.items()}, len(buf.getvalue()) / 1e6


def _save_weights(
    cfg: ExperimentConfig, module: Any, out: Path, record: run_record.RunRecordWriter, clock: Phases
) -> dict[str, Any]:
    """The fp32 weights as safetensors (the checkpoint folder goes); their size."""
    from safetensors.torch import save_model

    from experiments.core.assets import sha256_file

    metrics: dict[str, Any] = {}
    with clock("weights"):
        if cfg.trainer.save_weights:
            save_model(module.model, str(out / "model.safetensors"))
            metrics["model/size_mb"] = round((out / "model.safetensors").stat().st_size / 1e6, 3)
            record.update(weights_sha256=sha256_file(out / "model.safetensors"))
        shutil.rmtree(out / "checkpoints", ignore_errors=True)  # the safetensors file replaces it
    return metrics
