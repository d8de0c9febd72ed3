"""What a task serves: a network with positional tensor inputs, how request rows become those inputs,
and how its output becomes answers. Torch (and transformers) only — no Lightning — so an exported
folder loads fast in `ecomlab serve` and in any process that has torch.

Each task's `serving.py` provides three functions, declared once for every runtime (fp32, int8, ONNX):

- `export(module, dm, cfg, out) -> dict`: write the trained network into `out` (LoRA merged, pruning
  already permanent) and return what the served model needs to know (`info["serving"]`);
- `load(folder, info) -> Served`: rebuild the fp32 network from `out`;
- `quality(outputs, labels) -> dict`: the headline metrics of served outputs (to compare runtimes).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


class InputError(ValueError):
    """A request row the model cannot read (missing field, wrong type); the server answers 422."""


@dataclass
class Served:
    """A servable model.

    Args:
        net: `forward(*inputs)` in `input_names` order -> the served output (logits, a price, a
            calibrated click logit), batch first.
        input_names: names of the tensors `encode` returns, in the order `net` takes them.
        fields: request fields -> what they hold (`/metadata`, and the 422 messages).
        encode: request rows -> (input tensors, per-row notes such as "truncated to 128 tokens").
        decode: the served output of a batch -> one answer dict per row.
        seq_inputs: inputs whose second axis is the sequence length (dynamic in ONNX).
    """

    net: nn.Module
    input_names: tuple[str, ...]
    fields: dict[str, str]
    encode: Callable[[list[dict[str, Any]]], tuple[dict[str, torch.Tensor], list[list[str]]]]
    decode: Callable[[torch.Tensor], list[dict[str, Any]]]
    seq_inputs: tuple[str, ...] = field(default_factory=tuple)


def quantize_int8(net: nn.Module) -> nn.Module:
    """Dynamic int8 of every Linear (weights int8, activations quantised per batch) — CPU inference.
    LoRA adapters are merged into a copy first, as an export serves them (a quantised adapter Linear
    would break peft's forward)."""
    if hasattr(net, "merge_and_unload"):
        import copy

        net = copy.deepcopy(net).merge_and_unload()
    with warnings.catch_warnings():  # torch.ao's eager quantisation is marked for migration to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8)


def field_value(row: dict[str, Any], name: str, i: int, kind: type) -> Any:
    """`row[name]` as `kind` (str or float), or an InputError naming the row and the field."""
    if name not in row or row[name] is None:
        raise InputError(f"row {i}: missing field {name!r}")
    v = row[name]
    if kind is str:
        if not isinstance(v, str) or not v.strip():
            raise InputError(f"row {i}: field {name!r} must be a non-empty string")
        return v.strip()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"row {i}: field {name!r} must be a number (got {type(v).__name__})")
    return float(v)


def tokenize(
    tokenizer: Any, texts: list[str], max_length: int
) -> tuple[dict[str, torch.Tensor], list[list[str]]]:
    """Token ids and attention mask as the DataModule builds them (truncated to `max_length`, padded to
    the batch's longest), with a note on each text that was cut."""
    full = tokenizer(
        texts, truncation=False, return_attention_mask=False, return_token_type_ids=False, verbose=False
    )
    notes = [
        [f"truncated to {max_length} tokens"] if len(ids) > max_length else [] for ids in full["input_ids"]
    ]
    enc = tokenizer(
        texts,
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
        return_token_type_ids=False,
    )
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}, notes


SEQUENCE_INPUTS = ("input_ids", "attention_mask")


def median_ms(
    forward: Callable[[dict[str, torch.Tensor]], Any],
    example: dict[str, torch.Tensor],
    batch: int,
    max_length: int | None,
    repeats: int = 10,
    budget_s: float | None = None,
) -> float:
    """Median milliseconds of `forward` on `timing_inputs(example, batch, max_length)`: `repeats`
    passes after 2 warm-ups, without gradients. The one latency measurement of runs and exports.

    With `budget_s` (a training run's own figure, which should not cost a trial seconds): one
    warm-up, then passes until `repeats` or until `budget_s` is spent, at least 3."""
    import statistics
    import time

    inputs = timing_inputs(example, batch, max_length)
    warmups = 2 if budget_s is None else 1
    times: list[float] = []
    with torch.inference_mode():
        while len(times) < repeats + warmups:
            start = time.perf_counter()
            forward(inputs)
            times.append(time.perf_counter() - start)
            timed = times[warmups:]
            if budget_s is not None and len(timed) >= 3 and sum(timed) >= budget_s:
                break
    return statistics.median(times[warmups:]) * 1000


def timing_inputs(
    example: dict[str, torch.Tensor], batch: int, max_length: int | None
) -> dict[str, torch.Tensor]:
    """The first row of `example`, repeated to `batch` rows, its token ids stretched (by repeating
    them) to `max_length` with every position attended: the worst case a server sees."""
    out = {}
    for name, value in example.items():
        row = value[:1]
        if name in SEQUENCE_INPUTS and max_length and row.dim() == 2:
            row = row.repeat(1, -(-max_length // row.shape[1]))[:, :max_length]
            if name == "attention_mask":
                row = torch.ones_like(row)
        out[name] = row.repeat(batch, *([1] * (row.dim() - 1)))
    return out
