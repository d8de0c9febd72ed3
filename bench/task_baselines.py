"""Each task's test metric from its shipped sweep's best trial, next to simple baselines measured in
the same run on exactly the same split (the best trial's own data config, rebuilt):

- text classification: majority class, and TF-IDF (word 1-2-grams) + logistic regression (C on val);
- price regression: mean train price, and ridge regression on TF-IDF text + the numeric features
  (alpha on val, on the same log scale as the model when `data.log_target`);
- click-through: base rate, and logistic regression on one-hot categorical + numeric features (both
  fitted on every train impression, whatever negative sampling the trial used).

    python bench/task_baselines.py [--run] [SWEEP.yaml ...]

Without `--run` the studies must already exist in the runs folder (`ecomlab sweep FILE` first);
with it, each sweep is run (or resumed) before it is read.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_squared_error, r2_score, roc_auc_score

from experiments import run_record
from experiments.config import validate
from experiments.registry import build_datamodule
from experiments.study import default_storage_url, load_study
from experiments.sweep_config import load_sweep

DEFAULT_SWEEPS = [
    "sweeps/quickstart.yaml",
    "sweeps/text_classification-womens_clothing_class.yaml",
    "sweeps/text_classification-electronics_products.yaml",
    "sweeps/price_regression-electronics_prices.yaml",
    "sweeps/price_regression-pc_prices.yaml",
    "sweeps/click_through-open_bandit.yaml",
]
# (metric, higher is better) reported per task
HEADLINE = {"text_classification": ("test/f1", True), "price_regression": ("test/rmse", False),
            "click_through": ("test/auc", True)}  # fmt: skip


def _datamodule(cfg):
    dm = build_datamodule(cfg, console=Console(quiet=True))
    dm.setup("fit")
    return dm


def classification_baselines(dm) -> dict[str, float]:
    p = dm.prepared()
    majority = max(set(p.labels["train"]), key=p.labels["train"].count)
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    x = {
        s: (vec.fit_transform if s == "train" else vec.transform)(p.texts[s])
        for s in ("train", "val", "test")
    }
    best = max(((f1_score(p.labels["val"], clf.predict(x["val"]), average="macro"), clf)
                for clf in (LogisticRegression(C=c, max_iter=3000).fit(x["train"], p.labels["train"])
                            for c in (1.0, 10.0, 100.0))), key=lambda t: t[0])[1]  # fmt: skip
    return {"majority class": f1_score(p.labels["test"], [majority] * len(p.labels["test"]), average="macro"),
            "TF-IDF + logistic": f1_score(p.labels["test"], best.predict(x["test"]), average="macro"),
            "TF-IDF + logistic (acc)": accuracy_score(p.labels["test"], best.predict(x["test"]))}  # fmt: skip


def price_baselines(dm, log_target: bool) -> dict[str, float]:
    from scipy.sparse import csr_matrix, hstack

    from datamodules.price_data import unpack

    p = dm.prepared()
    arr = {s: unpack(p.labels[s]) for s in ("train", "val", "test")}
    y = {s: arr[s][:, 0] for s in arr}
    mu, sd = arr["train"][:, 1:].mean(0), arr["train"][:, 1:].std(0) + 1e-9
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x = {s: hstack([(vec.fit_transform if s == "train" else vec.transform)(p.texts[s]),
                    csr_matrix((arr[s][:, 1:] - mu) / sd)]).tocsr() for s in ("train", "val", "test")}  # fmt: skip
    fwd, inv = (np.log1p, np.expm1) if log_target else (lambda v: v, lambda v: v)
    best = min(((mean_squared_error(y["val"], inv(m.predict(x["val"]))), m)
                for m in (Ridge(alpha=a).fit(x["train"], fwd(y["train"])) for a in (0.1, 1.0, 10.0))),
               key=lambda t: t[0])[1]  # fmt: skip
    pred = inv(best.predict(x["test"]))
    rmse = lambda a, b: float(np.sqrt(mean_squared_error(a, b)))  # noqa: E731
    return {"mean train price": rmse(y["test"], np.full_like(y["test"], y["train"].mean())),
            "TF-IDF + features ridge": rmse(y["test"], pred),
            "TF-IDF + features ridge (R2)": float(r2_score(y["test"], pred))}  # fmt: skip


def ctr_baselines(dm) -> dict[str, float]:
    from sklearn.preprocessing import OneHotEncoder

    sp = dm.splits
    enc = OneHotEncoder(handle_unknown="ignore").fit(sp["train"].categorical.numpy())
    mu, sd = sp["train"].numeric.mean(0).numpy(), sp["train"].numeric.std(0).numpy() + 1e-9

    def x(s: str):
        from scipy.sparse import csr_matrix, hstack

        return hstack(
            [enc.transform(sp[s].categorical.numpy()), csr_matrix((sp[s].numeric.numpy() - mu) / sd)]
        ).tocsr()

    y = {s: sp[s].labels.numpy() for s in ("train", "val", "test")}
    best = max(((roc_auc_score(y["val"], m.predict_proba(x("val"))[:, 1]), m)
                for m in (LogisticRegression(C=c, max_iter=3000).fit(x("train"), y["train"]) for c in (0.01, 0.1, 1.0))),
               key=lambda t: t[0])[1]  # fmt: skip
    prob = best.predict_proba(x("test"))[:, 1]
    base = dm.meta["base_ctr"]  # the train click rate
    return {"base rate": 0.5, "logistic regression": float(roc_auc_score(y["test"], prob)),
            "logistic regression (log-loss)": float(log_loss(y["test"], prob, labels=[0, 1])),
            "base rate (log-loss)": float(log_loss(y["test"], np.full(len(y["test"]), base), labels=[0, 1]))}  # fmt: skip


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
        study = load_study(sw.name, sw.storage or default_storage_url(root))
        best = study.best_trial
        rec = run_record.read(root, best.user_attrs["experiment_id"])
        cfg = validate(rec.config)
        if cfg.task == "click_through":  # baselines learn from every train impression (same splits)
            cfg = validate({**rec.config, "data": {**rec.config["data"], "negative_sampling": 1.0}})
        dm = _datamodule(cfg)
        metric, higher = HEADLINE[cfg.task]
        if cfg.task == "text_classification":
            base = classification_baselines(dm)
        elif cfg.task == "price_regression":
            base = price_baselines(dm, cfg.data.log_target)
        else:
            base = ctr_baselines(dm)
        model = rec.metrics[metric]
        second = {
            "text_classification": "test/acc",
            "price_regression": "test/r2",
            "click_through": "test/logloss",
        }[cfg.task]
        shown = f"{model:.4f} ({second.split('/')[1]} {rec.metrics[second]:.4f})"
        rivals = {k: v for k, v in base.items() if "(" not in k}
        beats = all(model > v if higher else model < v for v in rivals.values())
        table.add_row(cfg.task, cfg.data.dataset, metric, f"trial {best.number} ({rec.exp_id})", shown,
                      "; ".join(f"{k}: {v:.4f}" for k, v in base.items()), "yes" if beats else "NO")  # fmt: skip
        print(f"{sw.name}: {metric} model {shown} | " + " | ".join(f"{k} {v:.4f}" for k, v in base.items())
              + f" | beats all: {beats}", flush=True)  # fmt: skip
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
