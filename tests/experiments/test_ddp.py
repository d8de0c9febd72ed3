"""A run on 2 CPU devices (DDP over gloo, two real processes) writes one record from rank 0 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from experiments.config import experiment_id, validate
from tests.conftest import tiny_config


def test_a_two_device_run_writes_one_record_from_rank_0(tmp_path: Path) -> None:
    raw = tiny_config(trainer={"accelerator": "cpu", "threads": 1}, tracking={"mode": "offline"})
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "ECOMLAB_RUNS": str(tmp_path / "runs")}
    for k in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run([sys.executable, "-m", "experiments.cli", "run", str(path), "--set", "trainer.devices=2"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in proc.stdout + proc.stderr  # really two processes
    two = validate({**raw, "trainer": {**raw["trainer"], "devices": 2}})
    assert experiment_id(two) != experiment_id(validate(raw))  # devices stay part of the id
    records = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert [p.name for p in records] == [experiment_id(two)]
    rec = records[0]
    manifest = json.loads((rec / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["devices"]["devices"] == 2
    metrics = json.loads((rec / "metrics.json").read_text())
    assert {"val/f1", "val/loss", "test/f1", "test/loss", "val/f1_best"} <= set(metrics)
    assert len(list((rec / "wandb").glob("offline-run-*"))) == 1  # one W&B run, rank 0's
    assert not list(rec.glob("reproductions"))
