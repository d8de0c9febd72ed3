"""(c) The study machinery's share of trial time: storage, sampler, pruner, claim lock, bookkeeping.

    python bench/sweep_overhead.py [--trials 6] [--sweep sweeps/quickstart.yaml]

One worker runs a sweep in this process (default: a small real-data sweep whose trials last about
10 s; --sweep runs a shipped file instead, e.g. the quickstart with its ~25-s trials). `train()`, the
one-time study setup and the pruning callback's per-epoch report (a storage write and the pruner's
decision, which run inside `train()`) are timed around their calls. The machinery's share is (worker
wall time - time inside train() + time in the per-epoch reports) / worker wall time (target <= 1%),
shown with the one-time setup and the per-trial part apart.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from optuna_integration import PyTorchLightningPruningCallback
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

import experiments.run.train as train_module  # noqa: E402
import experiments.sweep.worker as worker_module  # noqa: E402
from experiments.sweep.worker import run_worker  # noqa: E402


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
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument(
        "--sweep", type=Path, default=None, help="a sweep file to run instead of the small bench sweep"
    )
    args = ap.parse_args()
    inside: list[float] = []
    setup: list[float] = []
    reports: list[float] = []
    train_module.train = timed(train_module.train, inside)
    # run_worker looks open_study up in its module at call time
    worker_module.open_study = timed(worker_module.open_study, setup)
    cb = PyTorchLightningPruningCallback
    cb.on_validation_end = timed(cb.on_validation_end, reports)  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        warm = sweep_common.write(Path(tmp), "warm", budget={"n_trials": 1}, pruner={"type": "none"})
        run_worker(warm, Path(tmp) / "warm-runs", 0, None, console=Console(quiet=True))
        if args.sweep:  # warm its data and token caches too, in a runs folder of its own
            run_worker(
                args.sweep, Path(tmp) / "warm-runs-2", 0, None, n_trials=1, console=Console(quiet=True)
            )
        inside.clear()
        setup.clear()
        reports.clear()
        path = args.sweep or sweep_common.write(
            Path(tmp),
            "overhead",
            budget={"n_trials": args.trials},
            sampler={"type": "tpe", "seed": 0, "n_startup_trials": 2},
        )
        start = time.perf_counter()
        run_worker(path, Path(tmp) / "runs", 0, None, n_trials=args.trials, console=Console(quiet=True))
        wall = time.perf_counter() - start
    in_train, once, per_epoch = sum(inside), sum(setup), sum(reports)
    trial_work = in_train - per_epoch
    machinery = wall - trial_work
    per_trial = machinery - once
    n = len(inside)
    what = args.sweep or "TPE + Hyperband, tiny BERT, 2,000 real reviews"
    print(f"{n} trials ({what}), one worker")
    print(f"worker wall time:          {wall:8.2f} s")
    print(f"training (inside train()): {trial_work:8.2f} s  ({trial_work / n:.1f} s a trial)")
    print(f"study setup (once):        {once:8.2f} s")
    print(
        f"per-epoch reports:         {per_epoch:8.2f} s  ({len(reports)} reports, "
        f"{per_epoch / max(1, len(reports)) * 1000:.1f} ms each: storage write + pruner decision)"
    )
    print(
        f"per-trial machinery:       {per_trial:8.2f} s  = {per_trial / wall:.2%} of the wall time "
        f"({per_trial / n * 1000:.0f} ms a trial, epoch reports included)"
    )
    print(
        f"all machinery:             {machinery:8.2f} s  = {machinery / wall:.2%} of the wall time  (target <= 1%)"
    )


if __name__ == "__main__":
    main()
