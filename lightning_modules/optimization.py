"""AdamW with warmup and linear / cosine / constant decay: the optimizer every task module uses."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def adamw_with_warmup(model: nn.Module, lr: float, weight_decay: float, warmup: float, schedule: str,
                      total_steps: int, layer_decay: float = 1.0,
                      depth: tuple[dict[str, int], int] | None = None) -> dict[str, Any]:  # fmt: skip
    """Lightning's `configure_optimizers` answer: no weight decay on biases and norms; `warmup` is a
    fraction of `total_steps`; the scheduler steps every optimizer step.

    With `layer_decay` < 1, `depth` = ({parameter name: depth}, top) from `backbones.layer_depths`
    (embeddings 0, encoder layer i at i + 1, the head at top): a parameter at depth d trains at
    `lr * layer_decay ** (top - d)`, so each layer's lr is the one above it times the factor. The
    schedule scales every group's lr by the same warmup/decay factor."""
    from transformers import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
        get_linear_schedule_with_warmup,
    )

    groups: dict[tuple[int, bool], list[nn.Parameter]] = {}
    depths, top = depth if depth is not None and layer_decay != 1.0 else ({}, 0)
    for name, p in model.named_parameters():
        if p.requires_grad:
            d = depths.get(name, top)
            groups.setdefault((d, not any(k in name for k in NO_DECAY)), []).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": ps, "weight_decay": weight_decay if decays else 0.0, "lr": lr * layer_decay ** (top - d)}
         for (d, decays), ps in sorted(groups.items(), key=lambda kv: (kv[0][0], not kv[0][1]))], lr=lr,
    )  # fmt: skip
    total = max(1, int(total_steps))
    steps = int(warmup * total)
    if schedule == "cosine":
        sched = get_cosine_schedule_with_warmup(optimizer, steps, total)
    elif schedule == "linear":
        sched = get_linear_schedule_with_warmup(optimizer, steps, total)
    else:
        sched = get_constant_schedule_with_warmup(optimizer, steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
