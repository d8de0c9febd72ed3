"""AdamW with warmup and linear / cosine / constant decay: the optimizer every task module uses."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def adamw_with_warmup(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    warmup: float,
    schedule: str,
    total_steps: int,
    lr_scales: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Lightning's `configure_optimizers` answer: no weight decay on biases and norms; `warmup` is a
    fraction of `total_steps`; the scheduler steps every optimizer step.

    `lr_scales` multiplies the lr of the named parameters (layer-wise lr decay gives each encoder
    layer the lr of the one above times its factor; see `knobs/optim.py`). The schedule scales every
    group's lr by the same warmup/decay factor."""
    from transformers import (
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
        get_linear_schedule_with_warmup,
    )

    scales = lr_scales or {}
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((scales.get(name, 1.0), not any(k in name for k in NO_DECAY)), []).append(p)
    # lowest lr first, decayed before not decayed (the order of the groups changes no update)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], not kv[0][1]))
    param_groups = [
        {"params": ps, "weight_decay": weight_decay if decays else 0.0, "lr": lr * scale}
        for (scale, decays), ps in ordered
    ]
    optimizer = torch.optim.AdamW(param_groups, lr=lr)
    total = max(1, int(total_steps))
    steps = int(warmup * total)
    if schedule == "cosine":
        sched = get_cosine_schedule_with_warmup(optimizer, steps, total)
    elif schedule == "linear":
        sched = get_linear_schedule_with_warmup(optimizer, steps, total)
    else:
        sched = get_constant_schedule_with_warmup(optimizer, steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
