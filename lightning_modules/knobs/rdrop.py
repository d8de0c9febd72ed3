"""`rdrop.*`: R-Drop (Liang et al., 2021), consistency between two dropout passes.

On each training batch the model runs a second time, with other dropout masks, and the training
loss gains `alpha` times the symmetric KL divergence between the two passes' class distributions:
the network is pushed to give the same answer whichever units dropout removes. This implementation
adds the KL term only (the paper also averages the two passes' label losses); the logged loss and
the metrics are the first pass's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from experiments.core.config_group import Group
from experiments.core.knob import Knob, TrainingHook


class RDropConfig(Group):
    alpha: float = Field(
        0.0,
        ge=0,
        le=10,
        description="Weight of the symmetric KL between two dropout passes (R-Drop); 0: off.",
    )


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    if cfg.rdrop.alpha and not spec.class_logits:
        yield f"rdrop.alpha: task {cfg.task!r} has no class logits to compare between two passes; use 0"


def symmetric_kl(a: Any, b: Any) -> Any:
    """(KL(p_a || p_b) + KL(p_b || p_a)) / 2 of the softmax of two logit batches, averaged over the batch."""
    import torch.nn.functional as F

    la, lb = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
    kl_ab = F.kl_div(lb, la, reduction="batchmean", log_target=True)  # KL(p_a || p_b)
    kl_ba = F.kl_div(la, lb, reduction="batchmean", log_target=True)
    return (kl_ab + kl_ba) / 2


class RDropHook(TrainingHook):
    def __init__(self, r: RDropConfig) -> None:
        self.alpha = r.alpha

    def loss(self, module: Any, out: Any, batch: dict[str, Any], loss: Any, stage: str) -> Any:
        if stage != "train" or not module.training:
            return loss
        second = module.raw_output(batch)  # the same batch through other dropout masks
        return loss + self.alpha * symmetric_kl(out, second)


def _hook(cfg: Any) -> RDropHook | None:
    return RDropHook(cfg.rdrop) if cfg.rdrop.alpha else None


KNOB = Knob(
    "rdrop", RDropConfig, "R-Drop: consistency between two dropout passes.", refuse=_refuse, hook=_hook
)
