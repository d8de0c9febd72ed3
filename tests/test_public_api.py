"""`import ecomlab` is the public Python API: its names exist, import nothing heavy, and run."""

from __future__ import annotations

import subprocess
import sys

import ecomlab
from tests.conftest import tiny_config


def test_the_public_names_are_there_and_importing_them_is_light() -> None:
    assert {"train", "load_config", "load_model", "reproduce", "experiment_id", "validate"} <= set(
        ecomlab.__all__
    )
    code = (
        "import sys, ecomlab; heavy = [m for m in ('torch', 'lightning') if m in sys.modules]; print(heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_a_run_through_the_api_trains_records_and_reproduces(tmp_path) -> None:
    cfg = ecomlab.validate(tiny_config(trainer={"max_epochs": 1}))
    metrics = ecomlab.train(cfg, tmp_path / "runs")
    exp_id = ecomlab.experiment_id(cfg)
    assert (tmp_path / "runs" / exp_id / "metrics.json").is_file() and 0 <= metrics["val/f1"] <= 1
    assert ecomlab.reproduce(exp_id, tmp_path / "runs").identical


def test_the_old_load_model_path_of_model_cards_keeps_working() -> None:
    from experiments.export import load_model

    assert load_model is ecomlab.load_model
