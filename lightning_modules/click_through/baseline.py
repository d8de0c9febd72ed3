"""The cheap baseline of click-through: logistic regression on the one-hot categorical features plus
the standardised numeric ones, on the run's own train impressions; `C` in (0.01, 0.1, 1) chosen by
val AUC. Also the base rate (AUC 0.5)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.preprocessing import OneHotEncoder

C_GRID = (0.01, 0.1, 1.0)


def fit(dm: Any, cfg: Any) -> dict[str, Any]:
    dm.setup("fit")
    sp = dm.splits
    enc = OneHotEncoder(handle_unknown="ignore").fit(sp["train"].categorical.numpy())
    mu, sd = sp["train"].numeric.mean(0).numpy(), sp["train"].numeric.std(0).numpy() + 1e-9
    x = {
        s: hstack(
            [enc.transform(sp[s].categorical.numpy()), csr_matrix((sp[s].numeric.numpy() - mu) / sd)]
        ).tocsr()
        for s in ("train", "val", "test")
    }
    y = {s: sp[s].labels.numpy() for s in x}
    fits = [LogisticRegression(C=c, max_iter=3000).fit(x["train"], y["train"]) for c in C_GRID]
    val_auc = [roc_auc_score(y["val"], m.predict_proba(x["val"])[:, 1]) for m in fits]
    best = fits[val_auc.index(max(val_auc))]
    metrics = {}
    for s in ("val", "test"):
        prob = best.predict_proba(x[s])[:, 1]
        metrics[f"{s}/auc"] = float(roc_auc_score(y[s], prob))
        metrics[f"{s}/logloss"] = float(log_loss(y[s], prob, labels=[0, 1]))
    rate = float(np.mean(y["train"]))
    trivial = {
        f"{s}/logloss": float(log_loss(y[s], np.full(len(y[s]), rate), labels=[0, 1]))
        for s in ("val", "test")
    }
    return {
        "name": "logistic regression on one-hot features",
        "metrics": metrics,
        "settings": {"C": best.C},
        "trivial": {"name": "train click rate", "metrics": {**trivial, "val/auc": 0.5, "test/auc": 0.5}},
    }
