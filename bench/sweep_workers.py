"""(b) Sweep throughput: `--workers 2` vs `--workers 1` on this machine, trials per hour.

    python bench/sweep_workers.py [--workload bert|ctr] [--trials N]

The same sweep (random sampler, no pruning, parameters that do not change a trial's amount of work)
runs through `run_sweep` with one worker (all CPU threads) and with two (threads divided), each in a
fresh runs folder with warm data caches. Workloads:
  bert  the small real-data text sweep (tiny BERT 2x64, 2,000 women's clothing reviews, 4 epochs);
  ctr   the shipped click-through sweep's base (Open Bandit, embeddings + MLP, all 6 epochs: no
        early stopping), searching learning rate, warmup, weight decay and dropout.
It also times one trial in this process with 1 and with 2 torch threads: if a second thread makes a
trial s times faster, two single-thread workers can be at most 2/s times faster than one worker with
both threads. Prints both rates, over the whole wall time and from the first trial's start to the last
one's end (a long sweep's rate: without each worker's one-time imports), the ratios (target >= 1.7x)
and that bound.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

from experiments.sweep.monitor import run_sweep
from experiments.sweep.worker import run_worker  # noqa: E402

ROOT = Path(__file__).parents[1]
FIXED_WORK = {"sampler": {"type": "random", "seed": 0}, "pruner": {"type": "none"}}


def workload(name: str) -> dict[str, Any]:
    if name == "bert":
        return {}
    shipped = yaml.safe_load((ROOT / "sweeps" / "click_through-open_bandit.yaml").read_text())
    keep = ("optim.lr", "optim.warmup", "optim.weight_decay", "ctr.dropout")
    base = shipped["base"]
    # no early stopping: otherwise a trial's epochs depend on its draw, and the two sides draw differently
    base["trainer"]["patience"] = base["trainer"]["max_epochs"]
    return {
        "base": base,
        "metric": shipped["metric"],
        "parameters": {k: v for k, v in shipped["parameters"].items() if k in keep},
    }


def rate(spec: dict[str, Any], workers: int, trials: int, folder: Path) -> tuple[float, float, float]:
    """(wall seconds, trials/hour over the wall time, trials/hour from the first trial's start to the
    last one's end, i.e. without the workers' one-time start-up, as in a long sweep)."""
    path = sweep_common.write(folder, f"workers{workers}", budget={"n_trials": trials}, **FIXED_WORK, **spec)
    start = time.perf_counter()
    study = run_sweep(path, folder / "runs", workers=workers, console=Console(quiet=True))
    wall = time.perf_counter() - start
    done = study.get_trials()
    window = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return wall, trials / wall * 3600, trials / window * 3600


def one_trial(spec: dict[str, Any], threads: int, folder: Path) -> float:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        path = sweep_common.write(folder, f"threads{threads}", budget={"n_trials": 1}, **FIXED_WORK, **spec)
        start = time.perf_counter()
        run_worker(path, folder / "runs", 0, None, console=Console(quiet=True))
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(before)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", choices=("bert", "ctr"), default="bert")
    ap.add_argument("--trials", type=int, default=None, help="default: 6 (bert), 12 (ctr)")
    args = ap.parse_args()
    trials = args.trials or (6 if args.workload == "bert" else 12)
    spec = workload(args.workload)
    with tempfile.TemporaryDirectory() as tmp:
        one_trial(spec, os.cpu_count() or 1, Path(tmp) / "warm")  # fetch assets, fill the token cache
        t1 = one_trial(spec, 1, Path(tmp) / "t1")
        t2 = one_trial(spec, os.cpu_count() or 1, Path(tmp) / "t2")
        one_wall, one, one_steady = rate(spec, 1, trials, Path(tmp) / "one")
        two_wall, two, two_steady = rate(spec, 2, trials, Path(tmp) / "two")
    s = t1 / t2
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; workload {args.workload}, {trials} trials, "
        "random sampler, no pruning"
    )
    print(
        f"one trial in-process: 1 thread {t1:.1f} s, {os.cpu_count()} threads {t2:.1f} s: s = {s:.2f}, "
        f"so two workers can be at most {2 / s:.2f}x one"
    )
    print(f"--workers 1: {one_wall:7.1f} s  {one:7.1f} trials/hour  (without start-up: {one_steady:7.1f})")
    print(f"--workers 2: {two_wall:7.1f} s  {two:7.1f} trials/hour  (without start-up: {two_steady:7.1f})")
    print(
        f"ratio: {two / one:.2f}x over the wall time, {two_steady / one_steady:.2f}x without the workers' "
        "start-up  (target >= 1.7x)"
    )


if __name__ == "__main__":
    main()
