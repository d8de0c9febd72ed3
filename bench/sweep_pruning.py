"""(a) Compute to reach a target: TPE + Hyperband pruning vs random search without pruning.

    python bench/sweep_pruning.py [--seeds 0 1 2 3 4] [--target 0.83] [--max-trials 30]

Both sides run the same real-data sweep through `run_worker` (tiny backbone, 2,000 women's clothing
reviews, up to 9 epochs, no early stopping, val/f1), one trial at a time, for each seed, and stop at
the first trial whose val/f1 reaches the target (or after --max-trials). "Epochs to target" counts
every epoch trained before that point, pruned trials included, up to the epoch that reached it; both
sides are read from the same place, the trials' intermediate values. A side that never reaches the
target is charged everything it spent. Prints both sides per seed, their medians and totals and the
ratio (target >= 3x fewer).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

from experiments.study import default_storage_url, load_study  # noqa: E402
from experiments.sweep import run_worker  # noqa: E402

MAX_EPOCHS = 9  # Hyperband with reduction factor 3 gets rungs at epochs 1, 3 and 9
SIDES = {
    "tpe+hyperband": {"sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 5},
                      "pruner": {"type": "hyperband", "min_resource": 1, "reduction_factor": 3}},
    "random": {"sampler": {"type": "random", "seed": 0}, "pruner": {"type": "none"}},
}  # fmt: skip


def epochs_to_target(trials: list, target: float) -> tuple[int | None, int, float]:
    """(epochs spent when the target was first reached or None, epochs spent in all, best value)."""
    spent, best = 0, float("-inf")
    for t in sorted(trials, key=lambda t: t.number):
        for step in sorted(t.intermediate_values):
            spent += 1
            best = max(best, t.intermediate_values[step])
            if best >= target:
                return spent, spent, best
    return None, spent, best


def run_side(folder: Path, side: str, seed: int, target: float, max_trials: int) -> tuple[int | None, int, float, int]:
    spec = {k: dict(v) for k, v in SIDES[side].items()}
    spec["sampler"]["seed"] = seed
    name = f"{side.replace('+', '-')}-{seed}"
    path = sweep_common.write(folder, name, budget={"n_trials": max_trials}, **spec)
    runs = folder / f"runs-{name}"
    for n in range(1, max_trials + 1):  # one more trial per call: the study resumes, as `ecomlab sweep` does
        run_worker(path, runs, 0, None, n_trials=n, console=Console(quiet=True))
        trials = load_study(name, default_storage_url(runs)).get_trials()
        reached, spent, best = epochs_to_target(trials, target)
        if reached is not None:
            break
    return reached, spent, best, len(trials)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--target", type=float, default=0.83)
    ap.add_argument("--max-trials", type=int, default=30)
    args = ap.parse_args()
    sweep_common.BASE["trainer"] = {"max_epochs": MAX_EPOCHS, "patience": MAX_EPOCHS}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rows.append((seed, {side: run_side(Path(tmp), side, seed, args.target, args.max_trials) for side in SIDES}))
            a, b = rows[-1][1]["tpe+hyperband"], rows[-1][1]["random"]
            print(f"seed {seed}: TPE+Hyperband {a[0]} epochs ({a[3]} trials, best {a[2]:.4f}); "
                  f"random {b[0]} epochs ({b[3]} trials, best {b[2]:.4f})", flush=True)
    print(f"\nval/f1 >= {args.target}; tiny BERT 2x64, 2,000 real reviews, up to {MAX_EPOCHS} epochs a trial, "
          f"at most {args.max_trials} trials a study")
    print(f"{'seed':>4}  {'TPE+Hyperband: epochs (trials)':>32}  {'random, no pruning: epochs (trials)':>36}")
    ours, theirs = [], []
    for seed, r in rows:
        a, b = r["tpe+hyperband"], r["random"]
        # a side that never reaches the target is charged everything it spent
        ours.append(a[0] if a[0] is not None else a[1])
        theirs.append(b[0] if b[0] is not None else b[1])
        mark_a, mark_b = ("" if a[0] is not None else " (not reached)"), ("" if b[0] is not None else " (not reached)")
        print(f"{seed:>4}  {f'{ours[-1]} ({a[3]}){mark_a}':>32}  {f'{theirs[-1]} ({b[3]}){mark_b}':>36}")
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"median epochs to target: TPE+Hyperband {mo}, random without pruning {mt}; ratio {mt / mo:.2f}x")
    print(f"total epochs to target:  TPE+Hyperband {sum(ours)}, random without pruning {sum(theirs)}; "
          f"ratio {sum(theirs) / sum(ours):.2f}x  (target >= 3x fewer)")


if __name__ == "__main__":
    main()
