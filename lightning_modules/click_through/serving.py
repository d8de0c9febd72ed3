"""Serving a click-through model: `model.safetensors` and, in `ecomlab.json`, the features, their
train-split vocabularies (an unseen category maps to 0, as in training) and the val-chosen threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_modules.click_through.model import CtrModel
from lightning_modules.served import InputError, Served, field_value


class ClickNet(nn.Module):
    """`(categorical, numeric) -> calibrated click logit`."""

    def __init__(self, model: CtrModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        return self.model.calibrated(self.model(categorical, numeric))


def export(module: Any, dm: Any, cfg: Any, out: Path) -> dict[str, Any]:
    from safetensors.torch import save_model

    meta = dm.meta
    save_model(module.model, str(out / "model.safetensors"))
    return {
        "format": "ecomlab",
        "categorical": list(meta["categorical"]),
        "numeric": list(meta["numeric"]),
        "vocab": meta["vocab"],
        "cardinalities": list(meta["cardinalities"]),
        "embedding_dim": cfg.ctr.embedding_dim,
        "hidden": list(cfg.ctr.hidden),
        "numeric_mean": meta["numeric_mean"],
        "numeric_std": meta["numeric_std"],
    }


def load(folder: Path, info: dict[str, Any]) -> Served:
    from safetensors.torch import load_model

    s = info["serving"]
    model = CtrModel(
        s["cardinalities"],
        len(s["numeric"]),
        s["embedding_dim"],
        s["hidden"],
        0.0,
        s["numeric_mean"],
        s["numeric_std"],
        0.0,
    )
    load_model(model, str(folder / "model.safetensors"))  # the logit shift is a buffer in the file
    categorical, numeric, vocab = s["categorical"], s["numeric"], s["vocab"]
    threshold = info.get("threshold")

    def category(row: dict[str, Any], name: str, i: int) -> int:
        if name not in row or row[name] is None:
            raise InputError(f"row {i}: missing field {name!r}")
        return vocab[name].get(str(row[name]), 0)

    def encode(rows: list[dict[str, Any]]) -> tuple[dict[str, torch.Tensor], list[list[str]]]:
        cat = torch.tensor(
            [[category(r, c, i) for c in categorical] for i, r in enumerate(rows)], dtype=torch.long
        )
        num = torch.tensor(
            [[field_value(r, c, i, float) for c in numeric] for i, r in enumerate(rows)], dtype=torch.float32
        ).reshape(len(rows), len(numeric))
        notes = [[f"unseen {c}" for c, idx in zip(categorical, row) if idx == 0] for row in cat.tolist()]
        return {"categorical": cat.reshape(len(rows), len(categorical)), "numeric": num}, notes

    def decode(logits: torch.Tensor) -> list[dict[str, Any]]:
        out = []
        for p in torch.sigmoid(logits.float()).tolist():
            a: dict[str, Any] = {"click_probability": round(p, 6)}
            if threshold is not None:
                a["click_at_threshold"] = bool(p >= threshold)
            out.append(a)
        return out

    fields = {**{c: "category (string or number)" for c in categorical}, **{c: "number" for c in numeric}}
    return Served(ClickNet(model.eval()), ("categorical", "numeric"), fields, encode, decode)


def quality(logits: np.ndarray, clicks: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import log_loss, roc_auc_score

    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    auc = float(roc_auc_score(clicks, p)) if 0 < clicks.sum() < len(clicks) else float("nan")
    return {"test/auc": auc, "test/logloss": float(log_loss(clicks, p, labels=[0, 1]))}
