"""Each task's test metric from its shipped sweep's best trial, next to the product's baselines
(`experiments/run/baseline.py`, each task's `baseline.py`) fitted on exactly the same split (the best
trial's own data config):

- text classification: TF-IDF + logistic regression (word 1-2-grams, char 1-3-grams for Chinese; C on
  val), and the majority class;
- price regression: ridge on TF-IDF text + the numeric features (alpha on val, on the model's log
  scale with `data.log_target`), and the mean train price;
- click-through: logistic regression on one-hot categorical + numeric features, on the trial's own
  train impressions, and the base rate.

    python bench/task_baselines.py [--run] [SWEEP.yaml ...]

Without `--run` the studies must already exist in the runs folder (`ecomlab sweep FILE` first);
with it, each sweep is run (or resumed) before it is read.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from rich.console import Console
from rich.table import Table

from experiments.config import validate
from experiments.results import run_record
from experiments.results.storage import default_storage_url, load_study
from experiments.run import baseline
from experiments.sweep.file import load_sweep

DEFAULT_SWEEPS = [
    "sweeps/quickstart.yaml",
    "sweeps/text_classification-womens_clothing_class.yaml",
    "sweeps/text_classification-electronics_products.yaml",
    "sweeps/price_regression-electronics_prices.yaml",
    "sweeps/price_regression-pc_prices.yaml",
    "sweeps/click_through-open_bandit.yaml",
]
# (metric, higher is better) reported per task
HEADLINE = {
    "text_classification": ("test/f1", True),
    "price_regression": ("test/rmse", False),
    "click_through": ("test/auc", True),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sweeps", nargs="*", default=DEFAULT_SWEEPS)
    ap.add_argument("--run", action="store_true", help="run (or resume) each sweep first")
    args = ap.parse_args()
    root = run_record.runs_root(None)
    table = Table(title="Shipped sweeps' best trials vs baselines on the same test split")
    for col in ("task", "dataset", "metric", "best trial (experiment)", "model", "baselines", "beats all?"):
        table.add_column(col, overflow="fold")
    for path in args.sweeps:
        if args.run:
            subprocess.run([sys.executable, "-m", "experiments.cli", "sweep", path], check=True)
        sw = load_sweep(path)
        study = load_study(sw.name, sw.spec.storage or default_storage_url(root))
        best = study.best_trial
        rec = run_record.read(root, best.user_attrs["experiment_id"])
        cfg = validate(rec.config)
        metric, higher = HEADLINE[cfg.task]
        b = baseline.compute(cfg)
        base = {b["name"]: b["metrics"][metric], b["trivial"]["name"]: b["trivial"]["metrics"][metric]}
        model = rec.metrics[metric]
        second = {
            "text_classification": "test/acc",
            "price_regression": "test/r2",
            "click_through": "test/logloss",
        }[cfg.task]
        shown = f"{model:.4f} ({second.split('/')[1]} {rec.metrics[second]:.4f})"
        rivals = {k: v for k, v in base.items() if "(" not in k}
        beats = all(model > v if higher else model < v for v in rivals.values())
        table.add_row(
            cfg.task,
            cfg.data.dataset,
            metric,
            f"trial {best.number} ({rec.exp_id})",
            shown,
            "; ".join(f"{k}: {v:.4f}" for k, v in base.items()),
            "yes" if beats else "NO",
        )
        print(
            f"{sw.name}: {metric} model {shown} | "
            + " | ".join(f"{k} {v:.4f}" for k, v in base.items())
            + f" | beats all: {beats}",
            flush=True,
        )
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
