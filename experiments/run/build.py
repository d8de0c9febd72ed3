"""Building a run's objects from its config: seeds and determinism, the Lightning Trainer, and a
trained model rebuilt from its run record (for export, a teacher's logits and anomaly scoring)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.config.registry import build_datamodule, build_module
from experiments.core.errors import RunRecordError
from experiments.results import run_record


def seed_everything(cfg: Any) -> None:
    """torch's CPU threads (when the config sets them) and every seed, from `cfg.seed`."""
    import lightning.pytorch as pl
    import torch

    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)


def global_rank(cfg: Any) -> int:
    """This process's rank in a multi-device run: 0 alone, or as Lightning's launcher, torchrun or
    SLURM set it (RANK, else NODE_RANK x devices + LOCAL_RANK)."""
    env = os.environ
    if cfg.trainer.devices * cfg.trainer.num_nodes == 1:
        return 0
    if env.get("RANK"):
        return int(env["RANK"])
    return int(env.get("NODE_RANK", 0)) * cfg.trainer.devices + int(env.get("LOCAL_RANK", 0))


def build_trainer(
    cfg: Any,
    module: Any,
    dm: Any,
    out: Path,
    console: Console,
    loggers: list[Any],
    extra_callbacks: list[Any],
) -> tuple[Any, Any]:
    """The Lightning Trainer of a run and its best-checkpoint callback."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, RichProgressBar

    from experiments.run.pruning import ScheduledPruning

    t = cfg.trainer
    checkpoint = ModelCheckpoint(
        dirpath=out / "checkpoints",
        filename="best",
        monitor=t.monitor,
        mode=t.mode,
        save_top_k=1,
        save_weights_only=True,
        auto_insert_metric_name=False,
    )
    callbacks: list[Any] = [
        checkpoint,
        EarlyStopping(monitor=t.monitor, mode=t.mode, patience=t.patience),
        RichProgressBar(console_kwargs={"file": console.file}),
    ]
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
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        precision=t.precision,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        accumulate_grad_batches=t.accumulate_grad_batches,
        use_distributed_sampler=False,  # the DataModule shards itself: val/test see each example once
        deterministic=t.deterministic,
        logger=loggers,
        callbacks=callbacks,
        default_root_dir=str(out),
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        val_check_interval=t.val_check_interval,
        gradient_clip_val=cfg.optim.grad_clip,
        log_every_n_steps=max(1, min(10, batches)),
        enable_model_summary=False,
    )
    return trainer, checkpoint


def rebuild(cfg: Any, rec: run_record.RunRecord) -> tuple[Any, Any]:
    """The set-up DataModule and the trained module of a record (weights from model.safetensors)."""
    from safetensors.torch import load_model as load_weights

    weights = rec.path / "model.safetensors"
    if not weights.is_file():
        raise RunRecordError(
            f"Run {rec.exp_id} has no model.safetensors (trainer.save_weights was off, or its record was "
            "fetched from an artifact store without weights: set `artifacts.weights: true`). Run it again "
            f"with `ecomlab run {rec.path / 'config.yaml'} --force`."
        )
    seed_everything(cfg)
    # the originals (never augmented); a cross-validated run's model on its chosen fold's split
    dm = build_datamodule(cfg, console=Console(file=io.StringIO()), augment=False, fold=rec.fold)
    dm.prepare_data()
    dm.setup("fit")
    seed_everything(cfg)
    module = build_module(cfg, dm)
    load_weights(module.model, str(weights))
    return dm, module.eval()
