"""`adversarial.*`: adversarial training on the word embeddings (FGM: Miyato et al. 2017; PGD: Madry
et al. 2018), implemented in `lightning_modules.adversarial`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import Field

from experiments.core.config_group import Group
from experiments.core.knob import Knob, TrainingHook


class AdversarialConfig(Group):
    """Adversarial training on the word embeddings (FGM: Miyato et al. 2017; PGD: Madry et al. 2018)."""

    method: Literal["none", "fgm", "pgd"] = Field(
        "none",
        description="Perturb the word embeddings along the loss gradient each training step; none: off.",
    )
    epsilon: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Size of the perturbation as a share of the example's word-embedding norm (L2 over all "
        "its tokens); PGD's ball radius.",
    )
    steps: int = Field(3, ge=1, le=20, description="PGD: gradient-ascent steps per training step.")
    alpha: float = Field(0.004, gt=0, le=1, description="PGD: size of each step, as a share of that norm.")
    weight: float = Field(
        1.0, gt=0, le=10, description="Weight of the loss on the perturbed input, added to the clean loss."
    )


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    if cfg.adversarial.method != "none" and not spec.text_encoder:
        yield (
            f"adversarial.method: task {cfg.task!r} has no text encoder whose word embeddings could be "
            "perturbed; use none"
        )


class AdversarialHook(TrainingHook):
    """The training loss is the clean loss plus `weight` times the loss at the perturbation."""

    def __init__(self, a: AdversarialConfig) -> None:
        from lightning_modules.adversarial import Adversarial

        self.adversarial = Adversarial(a.method, a.epsilon, a.steps, a.alpha, a.weight)

    def train_step(self, module: Any, objective: Callable[[], Any]) -> Any:
        from lightning_modules.adversarial import word_embeddings

        total, _clean = self.adversarial.loss(word_embeddings(module.model), objective)
        return total


def _hook(cfg: Any) -> AdversarialHook | None:
    return AdversarialHook(cfg.adversarial) if cfg.adversarial.method != "none" else None


KNOB = Knob(
    "adversarial",
    AdversarialConfig,
    "Adversarial training on the word embeddings.",
    refuse=_refuse,
    hook=_hook,
)
