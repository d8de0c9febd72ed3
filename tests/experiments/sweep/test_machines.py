"""One study on several "machines": separate `ecomlab sweep` processes, each in its own working
directory with its own runs folder, sharing only the Optuna storage and an artifact store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from experiments.results.storage import load_study
from tests.conftest import tiny_config

ECOMLAB = str(Path(sys.executable).parent / "ecomlab")
CANARY = "Canary-pw-7f3a9"


def machine(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir()
    return d


def write_sweep(where: Path, n_trials: int, epochs: int = 2) -> Path:
    spec: dict[str, Any] = {
        "name": "shared",
        "base": tiny_config(
            data={"batch_size": 8}, trainer={"max_epochs": epochs, "threads": 1}, tracking={"mode": "offline"}
        ),
        "metric": {"name": "val/f1", "goal": "maximize"},
        "budget": {"n_trials": n_trials},
        "sampler": {"type": "random", "seed": 0},  # every machine's file has the same seed
        "pruner": {"type": "none"},
        "faults": {"heartbeat_interval": 1, "grace_period": 3},
        "parameters": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    }
    path = where / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def start(where: Path, *args: str, **env: str) -> subprocess.Popen:
    full = {**os.environ, "ECOMLAB_RUNS": str(where / "runs"), **env}
    return subprocess.Popen(
        [ECOMLAB, *args], cwd=where, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run(where: Path, *args: str, **env: str) -> str:
    proc = start(where, *args, **env)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    return out


def check_the_study(url: str, n: int) -> list[optuna.trial.FrozenTrial]:
    trials = load_study("shared", url).get_trials()
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == n  # exactly the budget, across machines
    assert not [t for t in trials if t.state.name == "RUNNING"]
    lrs = [
        t.params["optim.lr"]
        for t in trials
        if "optim.lr" in t.params and not t.system_attrs.get("failed_trial")
    ]
    assert len(set(lrs)) == len(lrs)  # no start-up point drawn twice: seeds differ by storage slot
    return done


def test_two_machines_on_postgresql_share_budget_records_and_no_secret(
    tmp_path: Path, postgres_server: Any
) -> None:
    url = postgres_server.new_database().replace("postgres@", f"postgres:{CANARY}@")
    shared = tmp_path / "shared-artifacts"  # the folder every machine mounts
    a, b, c = machine(tmp_path, "a"), machine(tmp_path, "b"), machine(tmp_path, "c")
    sweep_a, sweep_b = write_sweep(a, 3, epochs=3), write_sweep(b, 3, epochs=3)
    # machine a: URL on the command line; machine b: in the environment
    proc_a = start(a, "sweep", str(sweep_a), "--storage", url, "--artifacts", str(shared))
    proc_b = start(b, "sweep", str(sweep_b), ECOMLAB_STORAGE=url, ECOMLAB_ARTIFACTS=str(shared))
    # kill machine a's monitor outright once a trial has finished somewhere
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            trials = load_study("shared", url).get_trials()
        except Exception:
            continue
        if any(t.state.name == "COMPLETE" for t in trials) and any(
            t.state.name == "RUNNING" and t.user_attrs.get("pid") for t in trials
        ):
            break
    finished_before = {t.number for t in load_study("shared", url).get_trials() if t.state.name == "COMPLETE"}
    proc_a.send_signal(signal.SIGKILL)
    out_a, _ = proc_a.communicate(timeout=60)
    out_b, _ = proc_b.communicate(timeout=600)
    assert proc_b.returncode == 0, out_b[-4000:]
    done = check_the_study(url, 3)
    assert finished_before <= {t.number for t in done}  # nothing finished was lost
    # machine c ran nothing: it sees every trial's record through the storage and the artifact store
    best = load_study("shared", url).best_trial.user_attrs["experiment_id"]
    out_r = run(c, "reproduce", best, ECOMLAB_STORAGE=url)
    assert "Fetched record" in out_r and "Identical" in out_r
    out_c = run(c, "compare", "shared", "--storage", url)
    assert "3 of 3 run(s)" in out_c
    run(c, "report", "shared", "--out", "shared.html", "--storage", url)
    assert (c / "shared.html").stat().st_size > 10_000
    run(c, "study", "best", "shared", "--export", "best.yaml", ECOMLAB_STORAGE=url)
    assert yaml.safe_load((c / "best.yaml").read_text())["optim"]["lr"] == pytest.approx(
        load_study("shared", url).best_trial.params["optim.lr"]
    )
    # the password is in no file of any machine and in no output
    for text in (out_a, out_b, out_c, out_r):
        assert CANARY not in text
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert not leaks


def test_two_machines_on_one_sqlite_file_start_exactly_the_budget_and_a_third_reads_every_record(
    tmp_path: Path,
) -> None:
    """No artifact store: a third machine with nothing but --storage still compares, exports the best
    config of, and reproduces every trial, from the records kept in the storage itself."""
    db = tmp_path / "one-disk" / "study.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    a, b, c = machine(tmp_path, "a"), machine(tmp_path, "b"), machine(tmp_path, "c")
    procs = [start(m, "sweep", str(write_sweep(m, 3)), "--storage", url) for m in (a, b)]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-4000:]
    done = check_the_study(url, 3)
    assert "3 of 3 run(s)" in run(c, "compare", "shared", "--storage", url)
    shown = run(c, "study", "show", "shared", "--storage", url)
    assert all(t.user_attrs["experiment_id"] in shown for t in done)
    run(c, "study", "best", "shared", "--export", "best.yaml", "--storage", url)
    best = load_study("shared", url).best_trial
    assert yaml.safe_load((c / "best.yaml").read_text())["optim"]["lr"] == pytest.approx(
        best.params["optim.lr"]
    )
    manifest = yaml.safe_load((c / "runs" / best.user_attrs["experiment_id"] / "manifest.json").read_text())
    assert manifest["record_source"].endswith(best.user_attrs["experiment_id"])  # host:/path/runs/<id>
    assert manifest["status"] == "completed" and {t.user_attrs["host"] for t in done} == {os.uname().nodename}


def test_a_record_that_is_nowhere_is_counted_with_where_it_was_written(tmp_path: Path) -> None:
    """A trial that finished before records were kept in the storage, whose folder is on another
    machine: `compare` says how many and where, not "no completed runs"."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    from experiments.results.storage import storage

    study = optuna.create_study(study_name="old", storage=storage(url), direction="maximize")
    trial = study.ask()
    for key, value in {
        "experiment_id": "0123456789ab",
        "host": "gpu-node-7",
        "runs_dir": "/data/runs",
    }.items():
        trial.set_user_attr(key, value)
    study.tell(trial, 0.5)
    c = machine(tmp_path, "c")
    proc = start(c, "compare", "old", "--storage", url)
    out, _ = proc.communicate(timeout=120)
    assert "1 finished trial record(s) (trials 0)" in out and "gpu-node-7:/data/runs" in out, out
    assert "No completed runs to compare" not in out
