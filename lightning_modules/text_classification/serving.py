"""Serving a text classifier: a plain Hugging Face folder (`from_pretrained` loads it anywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_modules.served import Served, field_value, tokenize


class LogitsNet(nn.Module):
    """`(input_ids, attention_mask) -> logits` of a sequence-classification model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def export(module: Any, dm: Any, cfg: Any, out: Path) -> dict[str, Any]:
    """`save_pretrained` of the model (LoRA merged) and of its tokenizer, `id2label` set. Pruned
    attention heads are written back as zero heads, so the folder is what its config says (see
    `backbones.prune_heads`); `heads` in the returned info lets `load` slice them off again."""
    import copy

    from lightning_modules.backbones import head_counts, pad_heads

    model = module.model
    if hasattr(model, "merge_and_unload"):  # a peft model: fold the adapters into the base weights
        model = model.merge_and_unload()
    info = {"format": "hf", "labels": list(dm.label_names), "max_length": cfg.data.max_length}
    if cfg.prune.heads:
        info["heads"] = head_counts(model)
        model = copy.deepcopy(model)
        pad_heads(model)
    model.config.id2label = dict(enumerate(dm.label_names))
    model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    model.save_pretrained(out)
    dm.tokenizer.model_max_length = cfg.data.max_length  # so that truncation=True cuts where training did
    dm.tokenizer.save_pretrained(out)
    return info


def load(folder: Path, info: dict[str, Any]) -> Served:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    s = info["serving"]
    if s.get("heads"):  # the zero heads of a head-pruned model cost compute: serve without them
        from lightning_modules.backbones import keep_heads

        keep_heads(model, s["heads"])
    labels, max_length, threshold = s["labels"], s["max_length"], info.get("threshold")

    def encode(rows: list[dict[str, Any]]) -> tuple[dict[str, torch.Tensor], list[list[str]]]:
        return tokenize(tokenizer, [field_value(r, "text", i, str) for i, r in enumerate(rows)], max_length)

    def decode(logits: torch.Tensor) -> list[dict[str, Any]]:
        probs = torch.softmax(logits.float(), dim=-1)
        answers = []
        for p in probs.tolist():
            a: dict[str, Any] = {
                "label": labels[int(np.argmax(p))],
                "probabilities": dict(zip(labels, (round(x, 6) for x in p))),
            }
            if threshold is not None and len(labels) == 2:  # the decision at the val-chosen threshold
                a["label_at_threshold"] = labels[int(p[1] >= threshold)]
            answers.append(a)
        return answers

    return Served(
        LogitsNet(model),
        ("input_ids", "attention_mask"),
        {"text": "string"},
        encode,
        decode,
        seq_inputs=("input_ids", "attention_mask"),
    )


def quality(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    preds = logits.argmax(axis=1)
    return {
        "test/f1": float(f1_score(labels, preds, average="macro")),
        "test/acc": float(accuracy_score(labels, preds)),
    }
