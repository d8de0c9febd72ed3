"""AdamW with warmup and linear / cosine / constant decay: the optimizer every task module uses."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def adamw_with_warmup(model: nn.Module, lr: float, weight_decay: float, warmup: float, schedule: str,
                      total_steps: int) -> dict[str, Any]:  # fmt: skip
    """Lightning's `configure_optimizers` answer: no weight decay on biases and norms; `warmup` is a
    fraction of `total_steps`; the scheduler steps every optimizer step."""
    from transformers import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
        get_linear_schedule_with_warmup,
    )

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if any(k in name for k in NO_DECAY) else decay).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    total = max(1, int(total_steps))
    steps = int(warmup * total)
    if schedule == "cosine":
        sched = get_cosine_schedule_with_warmup(optimizer, steps, total)
    elif schedule == "linear":
        sched = get_linear_schedule_with_warmup(optimizer, steps, total)
    else:
        sched = get_constant_schedule_with_warmup(optimizer, steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
