"""(a) Compute to reach a target: TPE + Hyperband pruning vs random search without pruning.

    python bench/sweep_pruning.py [--workload text|price|price-small|price-long] [--seeds 0 1 2 3 4]
                                  [--target T [T ...]] [--max-trials 30] [--min-resource R]
                                  [--max-epochs 9] [--jobs 2] [--sampler tpe|gp] [--probe]
                                  [--pruner hyperband|successive_halving] [--pruned-only]
                                  [--val-check-interval 0.25] [--reduction-factor 3]
                                  [--prune-on val/loss]

Both sides run the same real-data sweep through `run_worker`, one trial at a time, for each seed, and
stop once every target has been reached (or after --max-trials; later trials cannot change an earlier
trial's epochs, so several targets share one pair of studies). Trials train up to 9 epochs (27 for
price-long) with no early stopping. Workloads:
  text         tiny BERT 2x64 from scratch on 2,000 women's clothing reviews, val/f1 >= target (0.82);
  price        the shipped PC-price sweep's base (tiny encoder 2x64 on the spec sheet, 48 tokens, +
               specs as numbers, 6,259 PCs, one thread a trial) over the ranges a user who does not
               know the model yet would search: learning rate 1e-5..1e-1 (log), weight decay
               1e-4..0.3 (log), warmup 0..0.3, hidden and head dropout 0..0.5; val/rmse <= target
               (195). The target came from a probe that is not part of the measurement: 31 random
               9-epoch trials (sampler seeds 0 and 1) ended at RMSE 181.9, 191.3, 194.7, 194.9, 200.2,
               212.3, ... so 195 is about the best 13% of the space. Measure with other seeds
               (--seeds 2 3 4 5 6), so that the random side is not the probe.
  price-small  the same search with a smaller encoder (1 layer, 32 wide, 24 tokens: an epoch costs
               about 2.5x less, so a study can run 30 trials) and Hyperband's first rung after epoch 4
               (--min-resource 3, the shipped PC-price sweep's own setting: in the probe, trials with
               long warmups were far behind after one epoch, RMSE 300-490, and level with the best by
               epoch 3 or 4). Targets 195, 191, 185, 183: of a probe's 65 random trials (sampler seeds
               0 and 1), 7, 4, 3 and 1 reached each (best 182.7), i.e. the best 11%, 6%, 5%, 1.5%.
               Measure with --seeds 2 3 4 5 6.
  minilm       the bundled pretrained MiniLM-L6 fine-tuned for one epoch (what fine-tuning a
               language model is) on the quickstart-minilm split (2,400 women's clothing reviews,
               recommended or not), over learning rate 1e-6..1e-2 (log), warmup 0..0.5 and dropout
               0..0.5; with --val-check-interval 0.25 each trial reports four times, each on the
               whole val split. Set the target with --probe first (seeds 0 1), measure with others.
  price-long   price-small's model and search with 27 epochs a trial and batches of 256 (20 steps an
               epoch; a trial takes about 30 s at one thread) and Hyperband's first rung after epoch 2
               (min_resource 1), so Hyperband has four brackets instead of two or three. Targets 176,
               174, 170, 168: of the 60 random trials of `--probe --seeds 0 1 --max-trials 30`, 7, 4,
               2 and 1 reached each (the best 12%, 7%, 3%, 1.7%; best 165.2, median 216). Measure with
               --seeds 2 3 4 5 6.
--probe runs only the random side, --max-trials trials a seed, and prints every trial's best value:
that is how the targets were set, with seeds that the measurement does not use.
--max-epochs sets the epochs a trial (and Hyperband's max_resource); the default targets are for the default.
--sampler gp puts Optuna's Gaussian-process sampler (5 start-up trials) on the pruned side instead, and
--pruner successive_halving Optuna's successive halving (one bracket: every trial can be cut at the
first rung) instead of Hyperband. --reduction-factor sets the pruner's (default 3): with four reports a
trial (--val-check-interval 0.25 on one epoch, steps 0-3) Hyperband at 3 has its rungs after the
second and the fourth report, so a trial cut at the second rung has trained its whole epoch; at 2
the rungs fall after the second and the third (half and three quarters of the epoch). --pruned-only skips the random side, whose draws and epochs are the
same whatever the pruned side's options, so a variant can be compared with an earlier full run.
With --val-check-interval, early stopping's patience (the price workloads': 9) counts validations, on
both sides alike. --prune-on val/loss sets the pruned side's `pruner.metric`: Hyperband compares the validation loss
(reported negated to a maximised val/f1) while TPE still learns from val/f1; its curves to the target
are then read from each trial's metrics.csv at the same validations.
"Epochs to target" counts every epoch trained before that point, pruned trials included, up to the
epoch that reached it; both sides are read from the same place, the trials' intermediate values. A
side that never reaches a target is charged everything it spent (a lower bound on what it needs).
Prints both sides per seed and target, their medians and totals and the ratio (target >= 3x fewer).
"""

from __future__ import annotations

import argparse
import copy
import csv
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

from experiments.results.storage import default_storage_url, load_study  # noqa: E402
from experiments.sweep.worker import run_worker  # noqa: E402

# The pruned side's sampler, pruner and min_resource are set per run (--sampler, --pruner, --min-resource).
# Its key stays "hyperband" whatever the pruner: it is part of the study name, and Optuna's Hyperband
# picks each trial's bracket from a hash of the study name, so renaming it would change the figures.
SIDES = {
    "hyperband": {
        "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 5},
        "pruner": {"type": "hyperband", "reduction_factor": 3},
    },
    "random": {"sampler": {"type": "random", "seed": 0}, "pruner": {"type": "none"}},
}
# workload -> (default targets, Hyperband's min_resource, epochs a trial)
DEFAULTS = {
    "text": ([0.82], 1, 9),
    "price": ([195.0], 1, 9),
    "price-small": ([195.0, 191.0, 185.0, 183.0], 3, 9),
    "price-long": ([176.0, 174.0, 170.0, 168.0], 1, 27),
    "minilm": ([0.86], 1, 1),
}


def workload(name: str, max_epochs: int = 9, val_check_interval: float | None = None) -> dict:
    """The sweep file's base, metric and parameters; with `val_check_interval`, validations (and
    pruner reports) that often inside each epoch, each on the whole val split: a target is set on
    whole-val values, and a mid-epoch value on a subset (`eval.val_subset`) is noisier, so it would
    cross the target by chance."""
    work = _workload(name, max_epochs)
    if val_check_interval is not None:
        work["base"]["trainer"]["val_check_interval"] = val_check_interval
    return work


def _workload(name: str, max_epochs: int) -> dict:
    if name == "minilm":  # what fine-tuning a pretrained encoder is: one epoch, the lr decides
        shipped = yaml.safe_load(
            (Path(__file__).parents[1] / "sweeps" / "quickstart-minilm.yaml").read_text()
        )
        base = shipped["base"]
        # one thread a trial, as for price: --jobs 2 runs two studies on 2 cores without oversubscription
        base["trainer"] = {"max_epochs": max_epochs, "patience": 99, "threads": 1}
        base["tracking"] = {"mode": "disabled"}
        params = {
            "optim.lr": {"type": "float", "low": 1.0e-6, "high": 1.0e-2, "log": True},
            "optim.warmup": {"type": "float", "low": 0.0, "high": 0.5},
            "model.hidden_dropout": {"type": "float", "low": 0.0, "high": 0.5},
        }
        return {"base": base, "metric": shipped["metric"], "parameters": params}
    if name == "text":
        base = copy.deepcopy(sweep_common.BASE)
        base["trainer"] = {"max_epochs": max_epochs, "patience": max_epochs}
        return {"base": base}
    shipped = yaml.safe_load(
        (Path(__file__).parents[1] / "sweeps" / "price_regression-pc_prices.yaml").read_text()
    )
    base = shipped["base"]
    # one thread a trial: the same numbers on any machine, and --jobs can run studies side by side
    base["trainer"] = {"max_epochs": max_epochs, "patience": max_epochs, "threads": 1}
    base["tracking"] = {"mode": "disabled"}
    if name in ("price-small", "price-long"):
        base["data"]["max_length"] = 24
        base["model"]["tiny"].update(layers=1, hidden=32)
    if name == "price-long":  # 20 steps an epoch instead of 79: 1.2 s instead of 1.9 s at one thread
        base["data"]["batch_size"] = 256
    # the ranges a user who does not yet know the model would search
    params = {
        "optim.lr": {"type": "float", "low": 1.0e-5, "high": 1.0e-1, "log": True},
        "optim.weight_decay": {"type": "float", "low": 1.0e-4, "high": 0.3, "log": True},
        "optim.warmup": {"type": "float", "low": 0.0, "high": 0.3},
        "model.hidden_dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "head.dropout": {"type": "float", "low": 0.0, "high": 0.5},
    }
    return {"base": base, "metric": shipped["metric"], "parameters": params}


SEED_STRIDE = 1000  # more than any study's trials


def objective_curve(t: Any, runs: Path | None = None, metric: str | None = None) -> list[float]:
    """The objective at each of a trial's reports: its intermediate values, or, when the pruner
    compared another metric (`--prune-on`), the objective read from the trial's metrics.csv at the
    same validations."""
    reports = [t.intermediate_values[s] for s in sorted(t.intermediate_values)]
    if runs is None or metric is None or not reports:
        return reports
    path = runs / t.user_attrs.get("experiment_id", "-") / "metrics.csv"
    values = []
    if path.is_file():
        with path.open() as f:
            values = [float(r[metric]) for r in csv.DictReader(f) if r.get(metric)]
    # a validation whose objective cannot be read is still spent, and never reaches the target
    return (values + [float("nan")] * len(reports))[: len(reports)]


def epochs_to_target(
    trials: list, target: float, maximize: bool = True, curves: list[list[float]] | None = None
) -> tuple[int | None, int, float]:
    """(epochs spent when the target was first reached or None, epochs spent in all, best value);
    `curves`: each trial's objective at its reports, when they are not its intermediate values."""
    sign = 1.0 if maximize else -1.0
    spent, best = 0, float("-inf")
    ordered = sorted(range(len(trials)), key=lambda i: trials[i].number)
    for i in ordered:
        for value in curves[i] if curves is not None else objective_curve(trials[i]):
            spent += 1
            best = max(best, sign * value)
            if best >= sign * target:
                return spent, spent, sign * best
    return None, spent, sign * best


def charged(result: tuple[int | None, int, float]) -> tuple[int, str]:
    """(epochs charged, "" or "+"): a side that never reached the target is charged all it spent."""
    return (result[0], "") if result[0] is not None else (result[1], "+")


def _maximize(work: dict) -> bool:
    return work.get("metric", {"goal": "maximize"})["goal"] == "maximize"


def _write(
    folder: Path,
    work: dict,
    side: str,
    seed: int,
    max_trials: int,
    name: str | None = None,
    **pruned: str | int,
) -> tuple[str, Path, Path]:
    """(study name, sweep file, runs folder) of one side's study; `pruned` sets the pruned side's options."""
    spec = {k: dict(v) for k, v in SIDES[side].items()}
    # each run_worker call opens the study as a new worker, whose sampler seed is the file's + its slot
    # (one a call): seeds SEED_STRIDE apart keep two studies' draws apart (seed 3's second trial would
    # otherwise be seed 4's first)
    spec["sampler"]["seed"] = seed * SEED_STRIDE
    if pruned:
        spec["sampler"]["type"] = pruned.pop("sampler")
        spec["pruner"].update(pruned)
    name = name or f"{spec['sampler']['type']}-{side}-{seed}"
    path = sweep_common.write(folder, name, budget={"n_trials": max_trials}, **spec, **work)
    return name, path, folder / f"runs-{name}"


def run_side(
    folder: Path,
    work: dict,
    side: str,
    seed: int,
    targets: list[float],
    max_trials: int,
    sampler: str = "tpe",
    min_resource: int = 1,
    pruner: str = "hyperband",
    reduction_factor: int = 3,
    prune_on: str | None = None,
) -> tuple[list[tuple[int | None, int, float]], int, int]:
    """Per target (epochs to it or None, epochs spent, best value); the trials run and their epochs."""
    pruned = (
        {
            "sampler": sampler,
            "type": pruner,
            "min_resource": min_resource,
            "reduction_factor": reduction_factor,
            **({"metric": prune_on} if prune_on else {}),
        }
        if side == "hyperband"
        else {}
    )
    name, path, runs = _write(folder, work, side, seed, max_trials, **pruned)
    maximize = _maximize(work)
    for n in range(1, max_trials + 1):  # one more trial per call: the study resumes, as `ecomlab sweep` does
        run_worker(path, runs, 0, None, n_trials=n, console=Console(quiet=True))
        trials = load_study(name, default_storage_url(runs)).get_trials()
        curves = None
        if side == "hyperband" and prune_on:
            curves = [objective_curve(t, runs, work["metric"]["name"]) for t in trials]
        results = [epochs_to_target(trials, t, maximize, curves) for t in targets]
        if all(r[0] is not None for r in results):
            break
    return results, len(trials), sum(len(t.intermediate_values) for t in trials)


def probe(folder: Path, work: dict, seed: int, max_trials: int) -> list[float]:
    """Each trial's best value in a random search without pruning (for setting targets beforehand)."""
    name, path, runs = _write(folder, work, "random", seed, max_trials, name=f"probe-{seed}")
    run_worker(path, runs, 0, None, n_trials=max_trials, console=Console(quiet=True))
    pick = max if _maximize(work) else min
    trials = load_study(name, default_storage_url(runs)).get_trials()
    return [pick(t.intermediate_values.values()) for t in trials if t.intermediate_values]


def print_probe(values: list[float], maximize: bool) -> None:
    ranked = sorted(values, reverse=maximize)
    print(f"probe: {len(ranked)} random trials without pruning, each trial's best value, best first:")
    print(", ".join(f"{v:.4g}" for v in ranked))
    for share in (0.2, 0.1, 0.05, 0.03):
        k = max(1, round(share * len(ranked)))
        print(f"  the best {share:.0%} ({k} trials) reach {ranked[k - 1]:.4g}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", choices=tuple(DEFAULTS), default="text")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument(
        "--target",
        type=float,
        nargs="+",
        default=None,
        help="default: 0.82 (text, val/f1), 195 (price), 195 191 185 183 (price-small, val/rmse), "
        "176 174 170 168 (price-long)",
    )
    ap.add_argument("--max-trials", type=int, default=30)
    ap.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="epochs a trial, also Hyperband's max_resource (default: 27 for price-long, else 9)",
    )
    ap.add_argument(
        "--min-resource", type=int, default=None, help="Hyperband's first rung (default: per workload)"
    )
    ap.add_argument("--sampler", choices=("tpe", "gp"), default="tpe", help="the pruned side's sampler")
    ap.add_argument(
        "--pruner",
        choices=("hyperband", "successive_halving"),
        default="hyperband",
        help="the pruned side's pruner",
    )
    ap.add_argument("--reduction-factor", type=int, default=3, help="the pruned side's pruner's")
    ap.add_argument(
        "--prune-on",
        default=None,
        help="the pruned side's pruner.metric, e.g. val/loss (default: the objective); validations to the "
        "target still count the objective, read from each trial's metrics.csv",
    )
    ap.add_argument(
        "--pruned-only",
        action="store_true",
        help="skip the random side (its draws and epochs do not depend on the pruned side's options)",
    )
    ap.add_argument(
        "--jobs", type=int, default=1, help="studies run side by side (epoch counts do not change)"
    )
    ap.add_argument(
        "--val-check-interval",
        type=float,
        default=None,
        help="validate (and report to the pruner) this often inside an epoch, e.g. 0.25; epochs are "
        "then counted in these reports, and min_resource too",
    )
    ap.add_argument(
        "--probe",
        action="store_true",
        help="only random search without pruning, --max-trials a seed: print the trials' best values",
    )
    args = ap.parse_args()
    default_targets, default_min_resource, default_epochs = DEFAULTS[args.workload]
    args.max_epochs = args.max_epochs or default_epochs
    work = workload(args.workload, args.max_epochs, args.val_check_interval)
    targets = args.target or default_targets
    min_resource = args.min_resource or default_min_resource
    if args.probe:
        with (
            tempfile.TemporaryDirectory() as tmp,
            ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool,
        ):
            values = [pool.submit(probe, Path(tmp), work, seed, args.max_trials) for seed in args.seeds]
            print_probe([v for job in values for v in job.result()], _maximize(work))
        return
    metric = work.get("metric", {"name": "val/f1"})["name"]
    if args.val_check_interval:  # every count below is in validations; steps = validations x this
        print(
            f"counts are validations, each {args.val_check_interval:g} of an epoch (optimizer steps = "
            f"validations x {args.val_check_interval:g} x steps an epoch, the same on both sides)"
        )
    label = f"{args.sampler.upper()}+{'Hyperband' if args.pruner == 'hyperband' else 'SHA'}"
    sides = ["hyperband"] if args.pruned_only else list(SIDES)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool,
    ):
        jobs = {
            (seed, side): pool.submit(
                run_side,
                Path(tmp),
                work,
                side,
                seed,
                targets,
                args.max_trials,
                args.sampler,
                min_resource,
                args.pruner,
                args.reduction_factor,
                args.prune_on,
            )
            for seed in args.seeds
            for side in sides
        }
        done = {key: job.result() for key, job in jobs.items()}
    print(
        f"{args.workload}: {metric}, up to {args.max_epochs} epochs a trial, at most {args.max_trials} trials a study, "
        f"{args.pruner} min_resource {min_resource} reduction_factor {args.reduction_factor}"
        + (f" on {args.prune_on}" if args.prune_on else "")
        + f"; trials run and epochs a trial, {' / '.join('pruned' if d == 'hyperband' else d for d in sides)}: "
        + ", ".join(
            f"seed {s} " + " / ".join(f"{done[s, d][1]} ({done[s, d][2] / done[s, d][1]:.1f})" for d in sides)
            for s in args.seeds
        )
    )
    if args.pruned_only:
        for i, target in enumerate(targets):
            cells = [
                "{}{} ({:.4g})".format(*charged(r), r[2])
                for r in (done[s, "hyperband"][0][i] for s in args.seeds)
            ]
            print(f"target {target}, {label} epochs (best) for seeds {args.seeds}: {', '.join(cells)}")
        return
    for i, target in enumerate(targets):
        print(f"\ntarget {target}")
        print(f"{'seed':>4}  {label + ': epochs (best)':>30}  {'random, no pruning: epochs (best)':>36}")
        ours, theirs = [], []
        for seed in args.seeds:
            a, b = done[seed, "hyperband"][0][i], done[seed, "random"][0][i]
            (ea, ma), (eb, mb) = charged(a), charged(b)
            ours.append(ea)
            theirs.append(eb)
            cell_a = f"{ea}{ma and '+ (not reached)'} ({a[2]:.4g})"
            cell_b = f"{eb}{mb and '+ (not reached)'} ({b[2]:.4g})"
            print(f"{seed:>4}  {cell_a:>30}  {cell_b:>36}")
        mo, mt = statistics.median(ours), statistics.median(theirs)
        print(f"median epochs to target: {label} {mo}, random without pruning {mt}; ratio {mt / mo:.2f}x")
        print(
            f"total epochs to target:  {label} {sum(ours)}, random without pruning {sum(theirs)}; "
            f"ratio {sum(theirs) / sum(ours):.2f}x  (target >= 3x fewer)"
        )


if __name__ == "__main__":
    main()
