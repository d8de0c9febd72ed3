"""Memory before compute: the estimate counts weights, gradients, optimizer states and activations
as the module docstring says, checkpointing and quantised weights shrink it, and a sweep trial whose
estimate is over the device's memory ends PRUNED for `oom` instead of crashing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from experiments.config import validate
from experiments.config.registry import build_datamodule, build_module
from lightning_modules import memory
from tests.conftest import tiny_config


def built(**groups):
    cfg = validate(tiny_config(**groups))
    dm = build_datamodule(cfg)
    dm.setup("fit")
    return build_module(cfg, dm).model


def test_the_estimate_counts_each_part_by_hand() -> None:
    model = built()
    total = sum(p.numel() for p in model.parameters())
    est = memory.estimate(model, batch=16, length=32, runtime_mb=0)
    layers, hidden, ffn, heads = 2, 32, 128, 2  # tiny_config's BERT: 2 x 32, FFN 4 x 32, 2 heads
    one = 16 * 32 * (10 * hidden + 3 * ffn) + 2.25 * 16 * heads * 32**2
    assert est.weights == 4 * total and est.gradients == 4 * total and est.optimizer == 8 * total
    assert est.activations == 4 * int(layers * int(one) + 2 * 16 * 32 * hidden)
    ckpt = memory.estimate(model, batch=16, length=32, checkpointing=True, runtime_mb=0)
    assert ckpt.activations < est.activations and ckpt.weights == est.weights


def test_lora_and_quantised_weights_cut_gradients_states_and_weights() -> None:
    full, lora = built(), built(peft={"r": 2})
    a = memory.estimate(full, batch=8, length=32, runtime_mb=0)
    b = memory.estimate(lora, batch=8, length=32, runtime_mb=0)
    q = memory.estimate(lora, batch=8, length=32, quantisation="nf4", runtime_mb=0)
    assert b.gradients < a.gradients / 5 and b.optimizer < a.optimizer / 5
    assert q.weights < b.weights / 4


def test_a_trial_that_cannot_fit_is_pruned_for_oom_and_the_study_goes_on(tmp_path: Path) -> None:
    from experiments.sweep.file import load_sweep
    from experiments.sweep.study import open_study
    from tests.experiments.sweep.test_sweep import study_of, sweep_cli, write_sweep

    path = write_sweep(
        tmp_path,
        budget={"n_trials": 2},
        pruner={"type": "none"},
        parameters={"data.batch_size": {"values": [8, 200000]}},
    )
    pre = open_study(load_sweep(path), tmp_path / "runs", sampling=False)[0]
    pre.enqueue_trial({"data.batch_size": 200000})
    pre.enqueue_trial({"data.batch_size": 8})
    os.environ["ECOMLAB_MAX_MEMORY_GB"] = "8"  # this machine's memory, as far as the runs know
    try:
        sweep_cli(str(path))
    finally:
        del os.environ["ECOMLAB_MAX_MEMORY_GB"]
    study = study_of(tmp_path)
    big, small = study.trials[:2]
    assert big.state.name == "PRUNED" and big.user_attrs["pruned_reason"] == "oom"
    assert (
        "oom: this run needs about" in big.user_attrs["error"]
        and "data.batch_size" in big.user_attrs["error"]
    )
    manifest = json.loads((tmp_path / "runs" / big.user_attrs["experiment_id"] / "manifest.json").read_text())
    assert manifest["status"] == "pruned" and manifest["reason"] == "oom"
    assert manifest["memory"]["total"] > manifest["memory"]["device_bytes"]
    assert small.state.name == "COMPLETE"


@pytest.mark.parametrize("accelerator", ["cpu"])
def test_the_device_memory_is_the_machine_s_or_the_cap(
    accelerator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    free, what = memory.device_memory(accelerator)
    assert free > 0 and "available memory" in what
    monkeypatch.setenv("ECOMLAB_MAX_MEMORY_GB", "0.5")
    assert memory.device_memory(accelerator) == (512 * 1024**2, "ECOMLAB_MAX_MEMORY_GB (0.5 GiB)")
