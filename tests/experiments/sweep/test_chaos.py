"""Two "machines" (two `ecomlab sweep` monitors in their own folders) share one study while a killer
SIGKILLs their workers at random moments, once while a worker holds the claim lock with an untagged
trial and once half-way through the write of a run record. Every budgeted trial still finishes, none
is left RUNNING, no worker outlives its monitor, and every finished record is whole."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest

from experiments.config import experiment_id, load_yaml, validate
from experiments.results.storage import load_study
from tests.experiments.sweep.test_machines import machine, start, write_sweep
from tests.processes import worker_pids

BUDGET = 6
RANDOM_KILLS = 4

# Loaded into every process of the test's sweeps (PYTHONPATH): in a worker, the first trial that
# reaches its tagging sleeps there with the claim lock held and its trial untagged, and the first
# metrics.json write stops half-way; each writes its pid to a marker for the killer.
HOOK = """
import os, sys, time
if os.environ.get("ECOMLAB_WORKER_TOKEN"):  # a sweep worker (the monitor sets it)
    from pathlib import Path
    marks = Path(os.environ["CHAOS_MARKS"])

    def claim(name):
        try:
            fd = os.open(marks / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True

    from experiments.results import run_record
    from experiments.sweep import objective

    tag = objective.Objective._tag

    def slow_tag(self, trial):
        if claim("claim-held"):
            time.sleep(120)
        return tag(self, trial)

    objective.Objective._tag = slow_tag
    whole = run_record._write_whole

    def half_written(path, text):
        if path.name == "metrics.json" and claim("record-write"):
            path.with_name(f".{path.name}.tmp").write_text(text[: len(text) // 2], encoding="utf-8")
            time.sleep(120)
        return whole(path, text)

    run_record._write_whole = half_written
"""


class Killer(threading.Thread):
    """SIGKILLs the workers that sleep at a marker, and RANDOM_KILLS more at random moments, 2-4 s
    apart (too few in a row for the crash-loop guard: the study keeps making progress)."""

    def __init__(self, tmp_path: Path, marks: Path, url: str) -> None:
        super().__init__(daemon=True)
        self.tmp_path, self.marks, self.url = tmp_path, marks, url
        self.kills: list[str] = []
        self.done = threading.Event()
        self.rng = random.Random(0)

    def kill(self, pid: int, why: str) -> None:
        try:
            import os

            os.kill(pid, signal.SIGKILL)
            self.kills.append(why)
        except ProcessLookupError:
            pass

    def run(self) -> None:
        targeted: set[str] = set()
        randoms = 0
        next_random = time.time() + self.rng.uniform(3, 6)
        while not self.done.is_set():
            time.sleep(0.2)
            for mark in self.marks.glob("*"):
                if mark.name not in targeted and mark.read_text():
                    targeted.add(mark.name)
                    self.kill(int(mark.read_text()), mark.name)
            pids = worker_pids(self.tmp_path)
            if randoms < RANDOM_KILLS and time.time() >= next_random and pids:
                self.kill(self.rng.choice(pids), "random")
                randoms += 1
                next_random = time.time() + self.rng.uniform(2, 4)


@pytest.mark.parametrize("storage_url", ["sqlite", "postgresql"], indirect=True)
def test_two_sweeps_survive_their_workers_being_killed(tmp_path: Path, storage_url: str | None) -> None:
    url = storage_url or f"sqlite:///{tmp_path / 'shared.db'}"
    hook, marks = tmp_path / "hook", tmp_path / "marks"
    hook.mkdir()
    marks.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    import os

    env = {"PYTHONPATH": f"{hook}:{os.environ.get('PYTHONPATH', '')}", "CHAOS_MARKS": str(marks)}
    a, b = machine(tmp_path, "a"), machine(tmp_path, "b")
    killer = Killer(tmp_path, marks, url)
    procs = [
        start(m, "sweep", str(write_sweep(m, BUDGET, epochs=2)), "--storage", url, **env) for m in (a, b)
    ]
    killer.start()
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=540)
            outs.append(out)
    finally:
        killer.done.set()
        killer.join()
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    assert len(killer.kills) >= 6 and {"claim-held", "record-write"} <= set(killer.kills), killer.kills
    trials = load_study("shared", url).get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == BUDGET, states
    assert "RUNNING" not in states, states
    assert not worker_pids(tmp_path), "a worker outlived its monitor"
    killed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert killed and all("killed by SIGKILL" in t.user_attrs.get("error", "") for t in killed), [
        t.user_attrs.get("error") for t in killed
    ]
    # every record that looks complete is: its metrics parse and its config is its experiment id
    records = [d for m in (a, b) for d in (m / "runs").iterdir() if (d / "config.yaml").is_file()]
    complete = [d for d in records if (d / "metrics.json").is_file()]
    assert len(complete) >= BUDGET - sum(s == "PRUNED" for s in states)
    for d in complete:
        assert json.loads((d / "metrics.json").read_text())["val/f1"] >= 0
        assert experiment_id(validate(load_yaml(d / "config.yaml"))) == d.name
        assert json.loads((d / "manifest.json").read_text())["status"] == "completed"
    half = [d for d in records if (d / ".metrics.json.tmp").is_file()]
    assert all(not (d / "metrics.json").is_file() or d in complete for d in half)
