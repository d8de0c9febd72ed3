"""Sweep trials on 2 CPU devices: one Optuna trial per DDP group of two real gloo processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from experiments.results.storage import default_storage_url, load_study
from experiments.sweep.file import load_sweep
from experiments.sweep.study import open_study
from tests.conftest import tiny_config
from tests.processes import alive, worker_pids

ECOMLAB = str(Path(sys.executable).parent / "ecomlab")


def ddp_sweep(tmp_path: Path, **overrides: Any) -> Path:
    spec: dict[str, Any] = {
        "base": tiny_config(
            data={"batch_size": 8},
            trainer={"max_epochs": 2, "accelerator": "cpu", "devices": 2, "threads": 1},
        ),
        "metric": {"name": "val/loss", "goal": "minimize"},
        "budget": {"n_trials": 2},
        "sampler": {"type": "random", "seed": 3},
        "pruner": {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        "faults": {"heartbeat_interval": 1, "grace_period": 3, "rank_timeout": 60},
        "parameters": {"optim.lr": {"type": "float", "low": 1e-9, "high": 1.0, "log": True}},
    }
    spec.update(overrides)
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")
    }
    return {**env, **extra}


def rank_lines(log: Path) -> list[str]:
    """The trials a rank ran, as it printed them: "trial N, experiment ID, params {...}"."""
    return re.findall(r"rank \d/2: (trial \d+, experiment \w+, params .*)", log.read_text())


def study(tmp_path: Path) -> optuna.Study:
    return load_study("ddp", default_storage_url(tmp_path / "runs"))


def test_a_two_device_sweep_runs_one_trial_per_group_and_prunes_on_rank_0(tmp_path: Path) -> None:
    """The devices are pinned in `parameters`, as W&B users pin values: a pinned value is base config.
    Two validations an epoch: the diverging trial is stopped by both ranks at the first, inside epoch 0."""
    base = tiny_config(
        data={"batch_size": 8}, trainer={"max_epochs": 2, "threads": 1, "val_check_interval": 0.5}
    )
    pinned = {"trainer.accelerator": "cpu", "trainer.devices": {"value": 2}}
    parameters = {"optim.lr": {"type": "float", "low": 1e-9, "high": 1.0, "log": True}, **pinned}
    path = ddp_sweep(tmp_path, base=base, parameters=parameters)
    pre = open_study(load_sweep(path), tmp_path / "runs", sampling=False)[0]
    pre.enqueue_trial({"optim.lr": 1e-9})  # barely moves: completes
    pre.enqueue_trial({"optim.lr": 0.5})  # diverges in its first epoch: the median pruner stops it
    proc = subprocess.run(
        [ECOMLAB, "sweep", str(path), "--runs-dir", str(tmp_path / "runs")],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 worker(s) of 2 ranks (DDP)" in proc.stdout
    trials = study(tmp_path).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED"]  # exactly the budget, no extra trial
    assert all(t.user_attrs["ranks"] == 2 for t in trials)
    pruned = trials[1]
    assert list(trials[0].intermediate_values) == [0, 1, 2, 3]  # two validations an epoch, reduced
    assert list(pruned.intermediate_values) == [0]  # both ranks stopped at the same first validation
    # both ranks sampled rank 0's parameters and built the same experiment
    logs = tmp_path / "runs" / "sweeps" / "ddp"
    rank0, rank1 = rank_lines(logs / "worker-0.log"), rank_lines(logs / "worker-0.rank1.log")
    assert len(rank0) == 2 and rank0 == rank1
    # one record per trial, from rank 0: one W&B-free record each, 2-device manifest
    records = sorted(p.name for p in (tmp_path / "runs").iterdir() if re.fullmatch(r"[0-9a-f]{12}", p.name))
    assert records == sorted(t.user_attrs["experiment_id"] for t in trials)
    done = json.loads(
        (tmp_path / "runs" / trials[0].user_attrs["experiment_id"] / "metrics.json").read_text()
    )
    assert done["val/loss"] == trials[0].value
    manifest = json.loads(
        (tmp_path / "runs" / pruned.user_attrs["experiment_id"] / "manifest.json").read_text()
    )
    assert manifest["status"] == "pruned" and manifest["devices"]["devices"] == 2


BOOM = """
import os
if os.environ.get("RANK") == "1":
    import experiments.run.single as t

    build = t.build_trainer

    def build_trainer(*args, **kwargs):
        trainer, checkpoint = build(*args, **kwargs)
        from lightning.pytorch.callbacks import Callback

        class Boom(Callback):
            def on_train_batch_end(self, trainer, *rest):
                marker = os.environ["BOOM_MARKER"]
                if trainer.global_step == 2 and not os.path.exists(marker):
                    open(marker, "w").close()
                    raise RuntimeError("rank 1 exploded mid-epoch")

        trainer.callbacks.append(Boom())
        return trainer, checkpoint

    t.build_trainer = build_trainer
"""


def test_a_rank_that_raises_fails_the_trial_without_a_hang(tmp_path: Path) -> None:
    """Rank 1 raises in the middle of its first trial while rank 0 waits in a gradient all-reduce."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BOOM)
    path = ddp_sweep(tmp_path, budget={"n_trials": 1}, pruner={"type": "none"})
    env = clean_env(PYTHONPATH=f"{hook}:{Path(__file__).parents[3]}", BOOM_MARKER=str(tmp_path / "boomed"))
    start = time.time()
    proc = subprocess.run(
        [ECOMLAB, "sweep", str(path), "--runs-dir", str(tmp_path / "runs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "boomed").exists()
    trials = study(tmp_path).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]  # failed, then the budget was met
    assert trials[0].user_attrs["error"] == "rank 1: RuntimeError: rank 1 exploded mid-epoch"
    assert time.time() - start < 60 + 120  # far below a hang: the group restarted, not timed out


@pytest.mark.slow  # the one-device path is in the default suite (test_machines.py kills a monitor)
def test_killing_the_monitor_stops_every_rank_and_queues_the_trial_again(tmp_path: Path) -> None:
    path = ddp_sweep(
        tmp_path,
        budget={"n_trials": 1},
        pruner={"type": "none"},
        base=tiny_config(
            data={"batch_size": 2},
            trainer={"max_epochs": 30, "patience": 30, "accelerator": "cpu", "devices": 2, "threads": 1},
        ),
    )
    monitor = subprocess.Popen(
        [ECOMLAB, "sweep", str(path), "--runs-dir", str(tmp_path / "runs")],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    storage = default_storage_url(tmp_path / "runs")
    training_trial(tmp_path, storage)
    ranks = worker_pids(path)
    assert len(ranks) == 2
    monitor.kill()
    monitor.wait()
    gone = time.time() + 10
    while time.time() < gone and any(alive(p) for p in ranks):
        time.sleep(0.2)
    assert not [p for p in ranks if alive(p)], "a rank outlived its monitor"
    trials = load_study("ddp", storage).get_trials()
    assert trials[0].state.name == "FAIL" and "monitor" in trials[0].user_attrs["error"]
    assert [t.state.name for t in trials[1:]] == ["WAITING"]  # the same parameters, queued for the resume
    assert trials[1].params == trials[0].params


def training_trial(tmp_path: Path, storage: str, timeout: float = 180) -> optuna.trial.FrozenTrial:
    """The first trial once training has started on its ranks (its record has a metrics.csv)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            trials = [t for t in load_study("ddp", storage).get_trials() if "experiment_id" in t.user_attrs]
        except Exception:
            continue  # the study is not created yet
        if trials and (tmp_path / "runs" / trials[0].user_attrs["experiment_id"] / "metrics.csv").exists():
            return trials[0]
    raise AssertionError("no trial started")


@pytest.mark.slow  # the one-device path is in the default suite (test_chaos.py SIGKILLs workers)
def test_a_sigkilled_rank_fails_its_trial_which_is_retried_by_a_fresh_group(tmp_path: Path) -> None:
    # 8 epochs, so that on a loaded machine the kill still lands mid-fit, not after the trial ended
    path = ddp_sweep(
        tmp_path,
        budget={"n_trials": 1},
        pruner={"type": "none"},
        base=tiny_config(
            data={"batch_size": 2},
            trainer={"max_epochs": 8, "patience": 8, "accelerator": "cpu", "devices": 2, "threads": 1},
        ),
    )
    monitor = subprocess.Popen(
        [ECOMLAB, "sweep", str(path), "--runs-dir", str(tmp_path / "runs")],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    storage = default_storage_url(tmp_path / "runs")
    running = training_trial(tmp_path, storage)
    victim = [p for p in worker_pids(path) if p != running.user_attrs["pid"]]  # rank 1
    assert len(victim) == 1
    os.kill(victim[0], signal.SIGKILL)
    out, _ = monitor.communicate(timeout=300)
    logs = "".join(p.read_text()[-3000:] for p in sorted((tmp_path / "runs").rglob("worker-*.log")))
    assert monitor.returncode == 0, out[-3000:]
    trials = load_study("ddp", storage).get_trials()
    seen = [(t.number, t.state.name, t.user_attrs.get("error"), t.system_attrs) for t in trials]
    assert trials[0].state.name == "FAIL", (seen, logs)  # its heartbeat stopped with the group
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE", (seen, logs)
    assert retries[0].params == trials[0].params
    assert not [t for t in trials if t.state.name == "RUNNING"]
