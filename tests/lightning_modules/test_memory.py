"""Memory before compute: the estimate counts weights, gradients, optimizer states and activations
as the module docstring says, checkpointing and quantised weights shrink it, and a sweep trial whose
estimate is over the device's memory ends PRUNED for `oom` instead of crashing."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.config import validate
from experiments.config.registry import build_datamodule, build_module
from lightning_modules import memory
from tests.conftest import FIXTURES, tiny_config


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
    kept_bytes = 4 * int(layers * int(one) + 2 * 16 * 32 * hidden)
    assert est.weights == 4 * total and est.gradients == 4 * total and est.optimizer == 8 * total
    assert est.activations == int(kept_bytes * memory.CPU_HEAP)
    assert est.transient == 4 * total + est.weights  # AdamW's temporary and the checkpoint's copy
    assert est.total == 16 * total + est.activations + est.transient  # on a CPU they add up
    gpu = memory.estimate(model, batch=16, length=32, runtime_mb=0, activation_bytes=2, cuda=True)
    assert gpu.activations == kept_bytes // 2 and gpu.transient == 4 * total
    assert gpu.total == 16 * total + max(gpu.activations, gpu.transient)  # freed before the update
    ckpt = memory.estimate(model, batch=16, length=32, checkpointing=True, runtime_mb=0)
    assert ckpt.activations < est.activations and ckpt.weights == est.weights


def test_a_llama_s_gated_ffn_keeps_more_than_a_bert_s(tmp_path: Path) -> None:
    from tests.lightning_modules.test_decoders import decoder_config, tiny_decoder

    llama = validate(decoder_config(tiny_decoder(tmp_path, "llama")))
    dm = build_datamodule(llama)
    dm.setup("fit")
    model = build_module(llama, dm).model
    assert memory._gated(model) and not memory._gated(built())
    plain = memory.layer_activations(4, 16, 32, 64, 2)
    gated = memory.layer_activations(4, 16, 32, 64, 2, gated=True)
    assert gated - plain == 4 * 16 * 64 * (memory.GATED_FFN_KEPT - memory.FFN_KEPT)


def test_the_estimate_is_within_20_percent_of_the_peak_a_fresh_run_measures(tmp_path: Path) -> None:
    """A BERT of 4 x 256 at batch 64 x 128 tokens, where activations are most of the peak: the
    estimate printed before the first step and the resident peak measured after the run agree."""
    rows = list(csv.DictReader((FIXTURES / "reviews.csv").read_text(errors="replace").splitlines()))
    words = " ".join(r["text"] for r in rows).split()
    rng = random.Random(0)
    with (tmp_path / "long.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["text", "label"])
        for i in range(160):  # 200 words: every batch is max_length wide
            out.writerow([" ".join(rng.choice(words) for _ in range(200)), ("negative", "positive")[i % 2]])
    cfg = tiny_config(
        data={"path": str(tmp_path / "long.csv"), "max_length": 128, "batch_size": 64},
        model={"tiny": {"layers": 4, "hidden": 256, "heads": 4, "vocab_size": 300}},
        trainer={"max_epochs": 1, "accelerator": "cpu"},  # resident memory, even where a GPU is
    )
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    env = {**os.environ, "ECOMLAB_RUNS": str(tmp_path / "runs")}
    subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", str(tmp_path / "cfg.yaml"), "--no-baseline"],
        env=env,
        check=True,
        capture_output=True,
    )
    (record,) = (tmp_path / "runs").iterdir()
    m = json.loads((record / "metrics.json").read_text())
    manifest = json.loads((record / "manifest.json").read_text())["memory"]
    assert manifest["length"] == 128 and manifest["activations"] > manifest["total"] / 2
    assert 1 / 1.2 <= m["memory/peak_rss_mb"] / m["memory/estimate_mb"] <= 1.2, m


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
