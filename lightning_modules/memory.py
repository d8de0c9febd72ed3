"""Memory before compute: what a run will need at its peak, estimated from the built model and the
config before the first step, the way accelerate's `estimate-memory` and torchtune's memory notes
count it: weights, gradients, optimizer states and the activations a step keeps for its backward
pass at batch x length, with and without gradient checkpointing or quantised base weights.

The activations of one transformer layer, in elements, for b sequences of s tokens, hidden size h,
FFN size f and a heads (inputs of every matmul, the attention scores and probabilities, norms,
dropout masks; Korthikanti et al. 2022 count the same in 16-bit): about b*s*(10*h + 3*f) +
2.25*b*a*s^2. With gradient checkpointing only each layer's input is kept (b*s*h), plus one layer's
full activations while it is recomputed. AdamW keeps two fp32 states per trainable parameter.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MB = 1024**2
# What the process itself holds before the model: the interpreter, torch, Lightning, the data
RUNTIME_FLOOR_MB = 450


@dataclass
class MemoryEstimate:
    """Bytes at the peak of a training step, by part (see the module docstring)."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    runtime: int
    batch: int
    length: int
    checkpointing: bool
    quantisation: str

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.runtime

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}

    def describe(self) -> str:
        parts = ", ".join(
            f"{k} {getattr(self, k) / MB:,.0f} MB"
            for k in ("weights", "gradients", "optimizer", "activations")
        )
        how = f"batch {self.batch} x {self.length} tokens" + (", checkpointed" if self.checkpointing else "")
        return f"peak about {self.total / MB:,.0f} MB: {parts} ({how}), runtime {self.runtime / MB:,.0f} MB"


def _shape(model: Any) -> tuple[int, int, int, int]:
    """(layers, hidden, ffn, heads) of the model's transformer, from its config."""
    cfg = getattr(model, "config", None)
    base = getattr(model, "base_model", model)
    cfg = getattr(base, "config", cfg) or getattr(getattr(base, "model", None), "config", None)
    get = lambda *names, default=0: next((getattr(cfg, n) for n in names if getattr(cfg, n, None)), default)  # noqa: E731
    hidden = get("hidden_size", "d_model", "n_embd")
    return (
        get("num_hidden_layers", "n_layer", "num_layers"),
        hidden,
        get("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden),
        get("num_attention_heads", "n_head", default=1),
    )


def layer_activations(batch: int, length: int, hidden: int, ffn: int, heads: int) -> int:
    """Elements one transformer layer keeps for backward (see the module docstring)."""
    return int(batch * length * (10 * hidden + 3 * ffn) + 2.25 * batch * heads * length**2)


def estimate(
    model: Any,
    batch: int,
    length: int,
    checkpointing: bool = False,
    quantisation: str = "none",
    element_bytes: int = 4,
    runtime_mb: float | None = None,
) -> MemoryEstimate:
    """The peak of a training step of `model` at `batch` sequences of `length` tokens."""
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    per_weight = {"none": element_bytes, "int8": 1, "nf4": 0.5}.get(quantisation, element_bytes)
    frozen = total - trainable
    weights = int(trainable * element_bytes + frozen * per_weight)
    layers, hidden, ffn, heads = _shape(model)
    one = layer_activations(batch, length, hidden, ffn, heads)
    if checkpointing:
        kept = layers * batch * length * hidden + one
    else:
        kept = layers * one
    kept += 2 * batch * length * hidden  # the embeddings' output and its norm
    runtime = int((runtime_mb if runtime_mb is not None else RUNTIME_FLOOR_MB) * MB)
    return MemoryEstimate(
        weights,
        trainable * 4,
        trainable * 8,
        kept * element_bytes,
        runtime,
        batch,
        length,
        checkpointing,
        quantisation,
    )


def device_memory(accelerator: str) -> tuple[int, str]:
    """(bytes a run may use, what that is): a CUDA device's total memory, else this machine's
    available RAM (`MemAvailable`), capped by `$ECOMLAB_MAX_MEMORY_GB` when set."""
    cap = os.environ.get("ECOMLAB_MAX_MEMORY_GB")
    if accelerator in ("gpu", "cuda", "auto"):
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return props.total_memory, f"{props.name} ({props.total_memory / 1024**3:.1f} GiB)"
    available = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    what = f"this machine's available memory ({available / 1024**3:.1f} GiB)"
    if cap:
        limit = int(float(cap) * 1024**3)
        if not available or limit < available:
            return limit, f"ECOMLAB_MAX_MEMORY_GB ({float(cap):g} GiB)"
    return available, what


def current_rss_mb() -> float:
    """This process's resident memory now."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float(RUNTIME_FLOOR_MB)


def reset_peak_rss() -> None:
    """Start the peak over from the resident memory now (Linux: `clear_refs` 5), so that the peak
    measured after training is training's, not the transient second copy of the weights that loading
    a checkpoint holds for a moment. Elsewhere the peak stays the process's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """This process's peak resident memory since `reset_peak_rss` (or since it started: VmHWM)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
