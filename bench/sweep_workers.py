"""(b) Sweep throughput: `--workers 2` vs `--workers 1` on this machine, trials per hour.

    python bench/sweep_workers.py [--trials 6]

The same small real-data sweep (tiny backbone, 2,000 women's clothing reviews, 4 epochs, random
sampler, no pruning) runs with one worker (all CPU threads) and with two (threads divided), each in a
fresh runs folder with warm data caches. Prints both rates and the ratio (target >= 1.7x).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

from experiments.sweep import run_sweep  # noqa: E402


def rate(workers: int, trials: int, folder: Path) -> tuple[float, float]:
    path = sweep_common.write(folder, f"workers{workers}", sampler={"type": "random", "seed": 0},
                              pruner={"type": "none"}, budget={"n_trials": trials})  # fmt: skip
    start = time.perf_counter()
    run_sweep(path, folder / "runs", workers=workers, console=Console(quiet=True))
    wall = time.perf_counter() - start
    return wall, trials / wall * 3600


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rate(1, 1, Path(tmp) / "warm")  # fetch assets, fill the token cache
        one_wall, one = rate(1, args.trials, Path(tmp) / "one")
        two_wall, two = rate(2, args.trials, Path(tmp) / "two")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{args.trials} trials, tiny BERT, 2,000 real reviews, 4 epochs each, random sampler, no pruning")
    print(f"--workers 1: {one_wall:7.1f} s  {one:7.1f} trials/hour")
    print(f"--workers 2: {two_wall:7.1f} s  {two:7.1f} trials/hour")
    print(f"ratio: {two / one:.2f}x  (target >= 1.7x)")


if __name__ == "__main__":
    main()
