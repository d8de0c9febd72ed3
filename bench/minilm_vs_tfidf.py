"""(c) Fine-tuned MiniLM vs a TF-IDF + logistic-regression baseline on the same real split.

    python bench/minilm_vs_tfidf.py [--target recommended] [--subsample 4000] [--epochs 2]

The MiniLM side is a full `train(cfg)` run (early stopping, best checkpoint, test split). The
baseline is fitted on exactly the same training texts (word 1-2-grams, C chosen on the validation
split) and scored on the same test texts. Prints both sides' test accuracy and macro-F1.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch
from rich.console import Console
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from experiments.config import validate
from experiments.config.registry import build_datamodule
from experiments.run.train import train


def tfidf_baseline(prep) -> dict[str, float]:
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vec.fit_transform(prep.texts["train"])
    best = None
    for c in (0.3, 1.0, 3.0, 10.0):
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(
            x_train, prep.labels["train"]
        )
        val_f1 = f1_score(prep.labels["val"], clf.predict(vec.transform(prep.texts["val"])), average="macro")
        if best is None or val_f1 > best[0]:
            best = (val_f1, clf)
    pred = best[1].predict(vec.transform(prep.texts["test"]))
    return {
        "test/acc": accuracy_score(prep.labels["test"], pred),
        "test/f1": f1_score(prep.labels["test"], pred, average="macro"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="recommended", choices=["recommended", "rating", "department"])
    ap.add_argument("--subsample", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    cfg = validate(
        {
            "seed": 42,
            "data": {
                "dataset": "womens_clothing_reviews",
                "target": args.target,
                "subsample": args.subsample,
                "max_length": 128,
                "batch_size": 32,
            },
            "model": {"backbone": "minilm"},
            "optim": {"lr": 5e-5, "warmup": 0.1},
            "trainer": {"max_epochs": args.epochs, "patience": 1},
            "tracking": {"mode": "disabled"},
        }
    )
    dm = build_datamodule(cfg, console=Console(quiet=True))
    prep = dm.prepared()
    t = time.perf_counter()
    base = tfidf_baseline(prep)
    base_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as runs:
        t = time.perf_counter()
        ours = train(cfg, runs, console=Console(quiet=True))
        ours_s = time.perf_counter() - t
    sizes = {s: len(prep.texts[s]) for s in ("train", "val", "test")}
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads")
    print(f"women's clothing reviews, target={args.target}, subsample {args.subsample}, splits {sizes}")
    print(f"{'model':34} {'test acc':>9} {'test macro-F1':>14} {'time':>8}")
    print(
        f"{'TF-IDF + logistic regression':34} {base['test/acc']:9.4f} {base['test/f1']:14.4f} {base_s:7.1f}s"
    )
    print(
        f"{'MiniLM fine-tuned (' + str(ours['epochs_trained']) + ' epochs)':34} {ours['test/acc']:9.4f} "
        f"{ours['test/f1']:14.4f} {ours_s:7.1f}s"
    )
    print(
        f"difference (MiniLM - baseline): acc {ours['test/acc'] - base['test/acc']:+.4f}, "
        f"macro-F1 {ours['test/f1'] - base['test/f1']:+.4f}"
    )


if __name__ == "__main__":
    main()
