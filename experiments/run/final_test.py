"""The test split, touched once: a sweep's trials report val only, and at its end the best trial (every
Pareto trial when there are several objectives) is tested from its saved weights.

`test_record` tests a finished record whose test was deferred: the test split's metrics and the
task's analysis files (the confusion matrix or residual plot, the val-chosen threshold applied to
test) go into the record, as a run that tested itself would have them; the manifest says when. A
record that already has its test metrics is left as it is.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.config.schema import validate
from experiments.core.errors import RunRecordError
from experiments.results import run_record
from experiments.run.build import rebuild


def deferred(rec: run_record.RunRecord) -> bool:
    """Whether a completed record's test was deferred and has not been run yet."""
    metrics = rec.metrics or {}
    return str(rec.manifest.get("test", "")).startswith("deferred") and not any(
        k.startswith("test/") for k in metrics
    )


def testable(rec_dir: Path) -> bool:
    """Whether a folder holds a finished record with its weights: a worker killed half-way through
    writing one leaves weights without metrics, which must not be tested into a record."""
    try:
        rec = run_record.read_dir(rec_dir)
    except Exception:  # noqa: BLE001 - a damaged record is simply not testable here
        return False
    return _finished(rec, rec_dir)


def _finished(rec: run_record.RunRecord, rec_dir: Path) -> bool:
    return (
        rec.manifest.get("status") == "completed"
        and rec.metrics is not None
        and (rec_dir / "model.safetensors").is_file()
    )


def test_record(rec_dir: Path, console: Console | None = None, why: str = "") -> dict[str, Any]:
    """The test metrics of the record's saved weights (computed now when they were deferred, else
    read back), written into its metrics.json."""
    import lightning.pytorch as pl

    rec = run_record.read_dir(rec_dir)
    if not _finished(rec, rec_dir):
        raise RunRecordError(f"{rec_dir}: not a finished record with its weights; nothing to test")
    if not deferred(rec):
        return {k: v for k, v in (rec.metrics or {}).items() if k.startswith("test/")}
    cfg = validate(rec.config, source=str(rec_dir / "config.yaml"))
    dm, module = rebuild(cfg, rec)
    if cfg.compress.int8:  # the trial was scored on its int8 model: test that one
        from lightning_modules.served import quantize_int8

        module.model = quantize_int8(module.model)
    trainer = pl.Trainer(
        accelerator="cpu" if cfg.compress.int8 else cfg.trainer.accelerator,
        devices=1,
        precision=cfg.trainer.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    module.keep_predictions()  # the analysis below reads this pass's outputs: the test split once
    (tested,) = trainer.test(module, datamodule=dm, verbose=False)
    dm.trainer = None
    metrics = {k: float(v) for k, v in tested.items()}
    metrics.update(module.evaluate(dm, rec_dir))  # the val-chosen threshold on test, the PNGs
    run_record.write_json(rec_dir / "metrics.json", {**(rec.metrics or {}), **metrics})
    manifest = {
        **rec.manifest,
        "test": f"run once after training{why} ({time.strftime('%Y-%m-%dT%H:%M:%S%z')})",
    }
    run_record.write_json(rec_dir / "manifest.json", manifest)
    if console is not None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("test/"))[:200]
        console.print(
            f"tested {rec.exp_id} once ({time.perf_counter() - start:.1f} s): {shown}", highlight=False
        )
    return {k: v for k, v in metrics.items() if k.startswith("test/")}
