"""The cheap baseline of text classification: TF-IDF + logistic regression, on the run's own split.

Word 1-2-grams for space-separated languages, character 1-3-grams for Chinese (`language: zh`);
`C` in (1, 10, 100) chosen by val macro-F1. Also the majority class, the floor every model clears.
"""

from __future__ import annotations

from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

C_GRID = (1.0, 10.0, 100.0)


def vectorizer(language: str) -> TfidfVectorizer:
    if language == "zh":
        return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)


def fit(dm: Any, cfg: Any) -> dict[str, Any]:
    p = dm.prepared()
    vec = vectorizer(getattr(type(cfg.data), "language", "en"))
    x = {"train": vec.fit_transform(p.texts["train"])}
    x.update({s: vec.transform(p.texts[s]) for s in ("val", "test")})
    y = p.labels
    fits = [LogisticRegression(C=c, max_iter=3000).fit(x["train"], y["train"]) for c in C_GRID]
    val_f1 = [f1_score(y["val"], m.predict(x["val"]), average="macro") for m in fits]
    best = fits[val_f1.index(max(val_f1))]
    metrics = {}
    for s in ("val", "test"):
        pred = best.predict(x[s])
        metrics[f"{s}/f1"] = float(f1_score(y[s], pred, average="macro"))
        metrics[f"{s}/acc"] = float(accuracy_score(y[s], pred))
    majority = max(sorted(set(y["train"])), key=y["train"].count)
    trivial = {
        f"{s}/f1": float(f1_score(y[s], [majority] * len(y[s]), average="macro")) for s in ("val", "test")
    }
    return {
        "name": "TF-IDF + logistic regression",
        "metrics": metrics,
        "settings": {"C": best.C},
        "trivial": {"name": "majority class", "metrics": trivial},
    }
