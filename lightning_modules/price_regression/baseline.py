"""The cheap baseline of price regression: ridge on TF-IDF text + the standardised numeric features.

Fitted on the model's scale (log1p of the price with `data.log_target`), `alpha` in (0.1, 1, 10)
chosen by val RMSE in the price's own unit; also the mean train price.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

ALPHA_GRID = (0.1, 1.0, 10.0)


def fit(dm: Any, cfg: Any) -> dict[str, Any]:
    p = dm.prepared()
    arr = {s: dm.arrays(p.labels[s]) for s in ("train", "val", "test")}
    y = {s: arr[s][:, 0] for s in arr}
    mu, sd = arr["train"][:, 1:].mean(0), arr["train"][:, 1:].std(0) + 1e-9
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    vec.fit(p.texts["train"])
    x = {s: hstack([vec.transform(p.texts[s]), csr_matrix((arr[s][:, 1:] - mu) / sd)]).tocsr() for s in arr}
    fwd, inv = (np.log1p, np.expm1) if cfg.data.log_target else (lambda v: v, lambda v: v)
    fits = [Ridge(alpha=a).fit(x["train"], fwd(y["train"])) for a in ALPHA_GRID]
    val_rmse = [mean_squared_error(y["val"], inv(m.predict(x["val"]))) for m in fits]
    best = fits[val_rmse.index(min(val_rmse))]
    metrics = {}
    for s in ("val", "test"):
        pred = inv(best.predict(x[s]))
        metrics[f"{s}/rmse"] = float(np.sqrt(mean_squared_error(y[s], pred)))
        metrics[f"{s}/mae"] = float(mean_absolute_error(y[s], pred))
        metrics[f"{s}/r2"] = float(r2_score(y[s], pred))
    mean = float(y["train"].mean())
    trivial = {
        f"{s}/rmse": float(np.sqrt(mean_squared_error(y[s], np.full_like(y[s], mean))))
        for s in ("val", "test")
    }
    return {
        "name": "ridge on TF-IDF + features",
        "metrics": metrics,
        "settings": {"alpha": best.alpha},
        "trivial": {"name": "mean train price", "metrics": trivial},
    }
