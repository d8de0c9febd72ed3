"""(a) Compute to reach a target: TPE + Hyperband pruning vs random search without pruning.

    python bench/sweep_pruning.py [--trials 10] [--seeds 0 1 2] [--target 0.75]

Both run the same small real-data sweep (tiny backbone, 2,000 women's clothing reviews, up to 4
epochs, val/f1) with the same trial budget, one worker, for each seed. "Epochs until target" counts
every epoch trained (pruned trials included) in trial order until the first trial whose val/f1 reaches
the target. Prints both sides per seed, their medians and the ratio (target >= 3x fewer).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

from experiments.study import default_storage_url, load_study  # noqa: E402
from experiments.sweep import run_worker  # noqa: E402


def epochs_to_target(runs: Path, name: str, target: float) -> tuple[int | None, int, float]:
    study = load_study(name, default_storage_url(runs))
    spent, reached_at, best = 0, None, 0.0
    for t in sorted(study.get_trials(), key=lambda t: t.number):
        if t.state.name not in ("COMPLETE", "PRUNED"):
            continue
        rec = json.loads((runs / t.user_attrs["experiment_id"] / "manifest.json").read_text())
        epochs = len(t.intermediate_values) or _epochs_trained(runs, t.user_attrs["experiment_id"], rec)
        spent += epochs
        value = max(t.intermediate_values.values()) if t.intermediate_values else (t.value or 0.0)
        best = max(best, value)
        if reached_at is None and value >= target:
            reached_at = spent
    return reached_at, spent, best


def _epochs_trained(runs: Path, exp_id: str, manifest: dict) -> int:
    metrics = runs / exp_id / "metrics.json"
    return int(json.loads(metrics.read_text())["epochs_trained"]) if metrics.is_file() else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--target", type=float, default=0.75)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            result = {}
            for label, spec in (
                ("tpe+hyperband", {"sampler": {"type": "tpe", "seed": seed, "n_startup_trials": 3},
                                   "pruner": {"type": "hyperband", "min_resource": 1, "reduction_factor": 3}}),
                ("random, no pruning", {"sampler": {"type": "random", "seed": seed}, "pruner": {"type": "none"}}),
            ):  # fmt: skip
                name = f"{label.split(',')[0].replace('+', '-')}-{seed}"
                path = sweep_common.write(Path(tmp), name, budget={"n_trials": args.trials}, **spec)
                runs = Path(tmp) / f"runs-{name}"
                run_worker(path, runs, 0, None, console=Console(quiet=True))
                result[label] = epochs_to_target(runs, name, args.target)
            rows.append((seed, result))
    print(f"{args.trials} trials per study, target val/f1 >= {args.target}, tiny BERT, 2,000 real reviews")
    print(f"{'seed':>4}  {'TPE+Hyperband: epochs to target / total (best)':>48}  {'random: epochs to target / total (best)':>42}")
    ours, theirs = [], []
    for seed, r in rows:
        a, b = r["tpe+hyperband"], r["random, no pruning"]
        print(f"{seed:>4}  {str(a[0]):>20} / {a[1]:<4} ({a[2]:.3f}){'':14}  {str(b[0]):>16} / {b[1]:<4} ({b[2]:.3f})")
        # a side that never reaches the target is charged everything it spent
        ours.append(a[0] if a[0] is not None else a[1])
        theirs.append(b[0] if b[0] is not None else b[1])
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"median epochs to target: TPE+Hyperband {mo}, random without pruning {mt}; ratio {mt / mo:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
