"""(c) The study machinery's share of trial time: storage, sampler, claim lock, bookkeeping.

    python bench/sweep_overhead.py [--trials 5]

One worker runs a small real-data sweep in this process; `train()` and the one-time study setup are
timed around their calls. The machinery's share is (worker wall time - time inside train()) / worker
wall time (target <= 1%), shown with the one-time setup and the per-trial part apart.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

import experiments.sweep as sweep_module  # noqa: E402
import experiments.train as train_module  # noqa: E402
from experiments.sweep import run_worker  # noqa: E402


def timed(fn, sink: list[float]):
    """`fn`, appending the duration of every call to `sink`."""

    def wrapper(*a, **kw):
        start = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            sink.append(time.perf_counter() - start)

    return wrapper


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    inside: list[float] = []
    setup: list[float] = []
    train_module.train = timed(train_module.train, inside)
    # run_worker looks create_study up in its module at call time
    sweep_module.create_study = timed(sweep_module.create_study, setup)
    with tempfile.TemporaryDirectory() as tmp:
        warm = sweep_common.write(Path(tmp), "warm", budget={"n_trials": 1}, pruner={"type": "none"})
        run_worker(warm, Path(tmp) / "warm-runs", 0, None, console=Console(quiet=True))
        inside.clear()
        setup.clear()
        path = sweep_common.write(Path(tmp), "overhead", budget={"n_trials": args.trials},
                                  sampler={"type": "tpe", "seed": 0, "n_startup_trials": 2})  # fmt: skip
        start = time.perf_counter()
        run_worker(path, Path(tmp) / "runs", 0, None, console=Console(quiet=True))
        wall = time.perf_counter() - start
    spent, once = sum(inside), sum(setup)
    per_trial = wall - spent - once
    print(f"{args.trials} trials (TPE + Hyperband, tiny BERT, 2,000 real reviews), one worker")
    print(f"worker wall time:        {wall:8.2f} s")
    print(f"inside train():          {spent:8.2f} s  ({len(inside)} calls, {spent / len(inside):.1f} s each)")
    print(f"study setup (once):      {once:8.2f} s  (open/create the study in a new SQLite file)")
    print(f"per-trial machinery:     {per_trial:8.2f} s  = {per_trial / wall:.2%} of the wall time "
          f"({per_trial / len(inside) * 1000:.0f} ms per trial)")
    print(f"all machinery:           {wall - spent:8.2f} s  = {(wall - spent) / wall:.2%} of the wall time  (target <= 1%)")


if __name__ == "__main__":
    main()
