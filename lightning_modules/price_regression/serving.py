"""Serving a price model: `model.safetensors` of the whole network, the encoder's config and tokenizer
in `encoder/`, and the train split's statistics in `ecomlab.json` (`experiments.export.load_model`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_modules.price_regression.model import PriceModel
from lightning_modules.served import Served, field_value, tokenize

STATS = ("feature_mean", "feature_std", "price_mean", "price_std", "log_price_mean", "log_price_std")


class PriceNet(nn.Module):
    """`(input_ids, attention_mask, features) -> price` in the data's own unit."""

    def __init__(self, model: PriceModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        return self.model.to_price(self.model(input_ids, attention_mask, features))


def export(module: Any, dm: Any, cfg: Any, out: Path) -> dict[str, Any]:
    from safetensors.torch import save_model

    model: PriceModel = module.model
    if hasattr(model.encoder, "merge_and_unload"):
        model.encoder = model.encoder.merge_and_unload()
    save_model(model, str(out / "model.safetensors"))
    model.encoder.config.save_pretrained(out / "encoder")
    dm.tokenizer.model_max_length = cfg.data.max_length
    dm.tokenizer.save_pretrained(out / "encoder")
    h = cfg.head
    return {
        "format": "ecomlab",
        "features": list(dm.meta["features"]),
        "text_dim": h.text_dim,
        "hidden": h.hidden,
        "log_target": cfg.data.log_target,
        "max_length": cfg.data.max_length,
        "stats": {k: dm.meta[k] for k in STATS},
    }


def load(folder: Path, info: dict[str, Any]) -> Served:
    from safetensors.torch import load_model
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    s = info["serving"]
    encoder = AutoModelForSequenceClassification.from_config(
        AutoConfig.from_pretrained(str(folder / "encoder"))
    )
    model = PriceModel(
        encoder, len(s["features"]), s["text_dim"], s["hidden"], 0.0, s["stats"], s["log_target"]
    )
    load_model(model, str(folder / "model.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(str(folder / "encoder"))
    features = s["features"]

    def encode(rows: list[dict[str, Any]]) -> tuple[dict[str, torch.Tensor], list[list[str]]]:
        texts = [field_value(r, "text", i, str) for i, r in enumerate(rows)]
        feats = torch.tensor(
            [[field_value(r, f, i, float) for f in features] for i, r in enumerate(rows)], dtype=torch.float32
        ).reshape(len(rows), len(features))
        inputs, notes = tokenize(tokenizer, texts, s["max_length"])
        return {**inputs, "features": feats}, notes

    def decode(prices: torch.Tensor) -> list[dict[str, Any]]:
        return [{"price": round(float(p), 4)} for p in prices.tolist()]

    fields = {"text": "string", **{f: "number" for f in features}}
    return Served(
        PriceNet(model.eval()),
        ("input_ids", "attention_mask", "features"),
        fields,
        encode,
        decode,
        seq_inputs=("input_ids", "attention_mask"),
    )


def quality(prices: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    err = prices - targets
    return {"test/rmse": float(np.sqrt(np.mean(err**2))), "test/mae": float(np.mean(np.abs(err)))}
