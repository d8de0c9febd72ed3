"""A run on K CPU devices (DDP over gloo, K real processes) writes one record from rank 0 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments.config import experiment_id, validate
from tests.conftest import tiny_config


def evaluate_on_one_device(cfg_raw: dict, weights: Path) -> dict[str, float]:
    """val/* of saved weights on one device, through the same DataModule and LightningModule."""
    import lightning.pytorch as pl
    from safetensors.torch import load_model

    from experiments.config.registry import build_datamodule, build_module

    cfg = validate(cfg_raw)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    module = build_module(cfg, dm)
    load_model(module.model, str(weights))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    (val,) = trainer.validate(module, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in val.items()}


def test_a_three_device_run_writes_one_record_from_rank_0_with_the_metrics_of_one_device(
    tmp_path: Path,
) -> None:
    """Three gloo processes train; rank 0 alone writes the record, W&B run and metrics.json, and its
    val/* (reduced over uneven shards, no padded duplicates) equal the same weights evaluated on one
    device. (The fixture's classes are balanced, so its stratified val split is even; three ranks
    make the shards uneven.)"""
    raw = tiny_config(
        data={"val_fraction": 0.15},
        trainer={"accelerator": "cpu", "threads": 1},
        tracking={"mode": "offline"},
    )
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", str(path), "--set", "trainer.devices=3"],
        capture_output=True,
        text=True,
        env={**env, "ECOMLAB_RUNS": str(tmp_path / "runs")},
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GLOBAL_RANK: 2, MEMBER: 3/3" in proc.stdout + proc.stderr  # really three processes
    three = {**raw, "trainer": {**raw["trainer"], "devices": 3}}
    assert experiment_id(validate(three)) != experiment_id(validate(raw))  # devices stay part of the id
    records = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert [p.name for p in records] == [experiment_id(validate(three))]
    rec = records[0]
    manifest = json.loads((rec / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["devices"]["devices"] == 3
    assert len(list((rec / "wandb").glob("offline-run-*"))) == 1  # one W&B run, rank 0's
    assert manifest["data"]["splits"]["val"] % 3  # uneven shards: a padded sampler would count twice
    recorded = json.loads((rec / "metrics.json").read_text())
    assert {"val/f1", "val/loss", "test/f1", "test/loss", "val/f1_best"} <= set(recorded)
    one = evaluate_on_one_device(three, rec / "model.safetensors")
    for name in ("val/loss", "val/acc", "val/f1", "val/precision", "val/recall"):
        assert one[name] == pytest.approx(recorded[name], abs=1e-6), (name, one, recorded)


def test_reproducing_a_run_on_more_gpus_than_here_says_what_differs(tmp_path: Path) -> None:
    from experiments.core.errors import RunRecordError
    from experiments.run.reproduce import reproduce

    cfg = validate(tiny_config(trainer={"accelerator": "gpu", "devices": 4}))
    rec = tmp_path / "runs" / experiment_id(cfg)
    rec.mkdir(parents=True)
    from experiments.config import resolved

    (rec / "config.yaml").write_text(yaml.safe_dump(resolved(cfg)))
    (rec / "manifest.json").write_text("{}")
    (rec / "metrics.json").write_text('{"val/f1": 0.5}')
    with pytest.raises(
        RunRecordError, match=r"trained on 4 GPU\(s\).*this machine has 0.*different experiment"
    ):
        reproduce(experiment_id(cfg), tmp_path / "runs")


def test_a_decoder_lora_run_on_two_cpu_devices_writes_one_record(tmp_path: Path) -> None:
    """A tiny Llama with LoRA on two gloo processes: one record from rank 0, as an encoder's."""
    from tests.lightning_modules.test_decoders import decoder_config, tiny_decoder

    raw = decoder_config(
        tiny_decoder(tmp_path, "llama"),
        peft={"r": 4},
        trainer={"accelerator": "cpu", "threads": 1, "devices": 2, "max_epochs": 1},
    )
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {
        k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK", "MASTER_PORT")
    }
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", str(path)],
        capture_output=True,
        text=True,
        env={**env, "ECOMLAB_RUNS": str(tmp_path / "runs")},
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert [p.name for p in records] == [experiment_id(validate(raw))]
    manifest = json.loads((records[0] / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["devices"]["devices"] == 2
    assert (
        json.loads((records[0] / "metrics.json").read_text())["model/trainable_params"] < 20_000
    )  # LoRA + head
