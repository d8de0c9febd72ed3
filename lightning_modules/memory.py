"""Memory before compute: what a run will need at its peak, estimated from the built model and the
config before the first step, the way accelerate's `estimate-memory` and torchtune's memory notes
count it: weights, gradients, optimizer states and the activations a step keeps for its backward
pass at batch x length, with and without gradient checkpointing or quantised base weights.

The activations of one transformer layer, in elements, for b sequences of s tokens, hidden size h,
FFN size f and a heads (inputs of every matmul, the attention scores and probabilities, norms,
dropout masks; Korthikanti et al. 2022 count the same in 16-bit): about b*s*(10*h + 3*f) +
2.25*b*a*s^2, with 5*f for a gated FFN (Llama, Qwen, Gemma: gate, up, their activation and product).
s is the longest training sequence (batches are padded to their longest, never past max_length).
With gradient checkpointing only each layer's input is kept (b*s*h), plus one layer's full
activations while it is recomputed. AdamW keeps two fp32 states per trainable parameter.

Beyond those, a run briefly holds a `transient`: AdamW's multi-tensor update makes one temporary as
large as the trainable weights, and on a CPU the weights-only checkpoint is serialised in memory when
it is saved and read whole when the best one is loaded (one more copy of the weights). On a CPU the
process's resident memory is what is measured, and glibc's heap keeps the blocks a backward pass
frees for the next step, so the activations count CPU_HEAP times and the transient comes on top of
them; on a GPU (CUDA's allocated bytes) the transient comes after the activations are freed, so the
larger of the two counts. CPU_HEAP was measured (`bench/llm_backbones.py memory`: MiniLM-L6 and
multilingual e5-small fully fine-tuned at batch 16 and 64, fresh processes, 2026-12-07).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MB = 1024**2
# What the process itself holds before the model: the interpreter, torch, Lightning, the data
RUNTIME_FLOOR_MB = 450
# What one layer keeps for backward, per token in units of the hidden size and of the FFN size, and
# per head in units of length^2 (see the module docstring)
HIDDEN_KEPT, FFN_KEPT, GATED_FFN_KEPT, SCORES_KEPT = 10, 3, 5, 2.25
# Resident bytes per activation byte kept, on a CPU (see the module docstring)
CPU_HEAP = 1.2


@dataclass
class MemoryEstimate:
    """Bytes at the peak of a training step, by part (see the module docstring)."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    transient: int
    runtime: int
    cuda: bool
    batch: int
    length: int
    checkpointing: bool
    quantisation: str

    @property
    def total(self) -> int:
        """The states and the process, plus the activations and the transient: on top of each other
        on a CPU, the larger of them on a GPU (see the module docstring)."""
        states = self.weights + self.gradients + self.optimizer + self.runtime
        if self.cuda:
            return states + max(self.activations, self.transient)
        return states + self.activations + self.transient

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}

    def describe(self) -> str:
        parts = ", ".join(
            f"{k} {getattr(self, k) / MB:,.0f} MB"
            for k in ("weights", "gradients", "optimizer", "activations", "transient")
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


def _gated(model: Any) -> bool:
    """Whether the FFN is gated (Llama, Qwen, Gemma, Mistral: gate and up projections)."""
    return any(name.endswith("gate_proj") for name, _ in model.named_modules())


def layer_activations(batch: int, length: int, hidden: int, ffn: int, heads: int, gated: bool = False) -> int:
    """Elements one transformer layer keeps for backward (see the module docstring)."""
    ffn_kept = GATED_FFN_KEPT if gated else FFN_KEPT
    return int(
        batch * length * (HIDDEN_KEPT * hidden + ffn_kept * ffn) + SCORES_KEPT * batch * heads * length**2
    )


def estimate(
    model: Any,
    batch: int,
    length: int,
    checkpointing: bool = False,
    quantisation: str = "none",
    element_bytes: int = 4,
    runtime_mb: float | None = None,
    activation_bytes: int | None = None,
    cuda: bool = False,
) -> MemoryEstimate:
    """The peak of a training run of `model` at `batch` sequences of at most `length` tokens (see the
    module docstring); `activation_bytes` 2 under 16-bit mixed precision, `cuda` when it trains on a
    GPU."""
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    per_weight = {"none": element_bytes, "int8": 1, "nf4": 0.5}.get(quantisation, element_bytes)
    frozen = [p for p in params if not p.requires_grad]
    if any(not p.is_floating_point() for p in frozen):  # already quantised (bitsandbytes packs nf4 two
        # weights a byte, and leaves embeddings and norms in floating point): count what is stored
        frozen_bytes = sum(p.numel() * p.element_size() for p in frozen)
    else:  # float weights that quantisation would shrink
        frozen_bytes = sum(p.numel() for p in frozen) * per_weight
    weights = int(trainable * element_bytes + frozen_bytes)
    layers, hidden, ffn, heads = _shape(model)
    one = layer_activations(batch, length, hidden, ffn, heads, gated=_gated(model))
    if checkpointing:
        kept = layers * batch * length * hidden + one
    else:
        kept = layers * one
    kept += 2 * batch * length * hidden  # the embeddings' output and its norm
    runtime = int((runtime_mb if runtime_mb is not None else RUNTIME_FLOOR_MB) * MB)
    activations = kept * (activation_bytes or element_bytes) * (1.0 if cuda else CPU_HEAP)
    # AdamW's temporary; on a CPU also the checkpoint's in-memory copy of the weights
    transient = trainable * 4 if cuda else trainable * 4 + weights
    return MemoryEstimate(
        weights,
        trainable * 4,
        trainable * 8,
        int(activations),
        transient,
        runtime,
        cuda,
        batch,
        length,
        checkpointing,
        quantisation,
    )


def device_memory(accelerator: str) -> tuple[int, str]:
    """(bytes a run may use, what that is): a CUDA device's total memory, else this machine's
    available RAM (`MemAvailable`), capped by `$ECOMLAB_MAX_MEMORY_GB` when set."""
    cap = os.environ.get("ECOMLAB_MAX_MEMORY_GB")
    if on_cuda(accelerator):
        import torch

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


def on_cuda(accelerator: str) -> bool:
    """Whether a run with this accelerator trains on a CUDA device."""
    if accelerator not in ("gpu", "cuda", "auto"):
        return False
    import torch

    return torch.cuda.is_available()


def release_free_memory() -> None:
    """Give memory the process freed back to the system (`gc`, then glibc's `malloc_trim`), so that
    the resident memory measured before a model is built is what the process holds, not heap that an
    earlier trial of the same worker freed and the next one will reuse."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measurement keeps the freed heap
        pass


def current_mb(accelerator: str = "cpu") -> float:
    """What the run holds now: CUDA memory allocated on a GPU, else this process's resident memory."""
    if on_cuda(accelerator):
        import torch

        return torch.cuda.memory_allocated() / MB
    return _status_mb("VmRSS", float(RUNTIME_FLOOR_MB))


def reset_peak(accelerator: str = "cpu") -> None:
    """Start the peak over from now: CUDA's peak statistics on a GPU, else the resident peak (Linux:
    `clear_refs` 5), so that the peak measured after training is training's, not the transient
    second copy of the weights that loading them holds for a moment. Elsewhere the peak stays the
    process's."""
    if on_cuda(accelerator):
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mb(accelerator: str = "cpu") -> float:
    """The peak since `reset_peak`: CUDA's most allocated on a GPU, else the resident peak (VmHWM)."""
    if on_cuda(accelerator):
        import torch

        return torch.cuda.max_memory_allocated() / MB
    return _status_mb("VmHWM", float("nan"))


def _status_mb(field: str, default: float) -> float:
    """A memory field of this process's /proc/self/status (Linux) in MB, else `default`."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return default
