"""What a knob declares (a torch-free `Knob`) and where it acts on training (`TrainingHook`).

A knob is a config group that changes how a model is built, trained or evaluated: LoRA, the
optimizer, pruning, distillation, adversarial training, augmentation, cross-validation. Each is one
module that says, together, everything about itself: its keys (a `Group` with a description per
field), one line of documentation, the refusal for a config whose task or data cannot use it, and
its hook into the shared training step. The registry (`experiments.config.registry.KNOBS`) holds
one line per knob; the experiment config, its validator, `ecomlab config`, `docs/extending.md`'s
list and the training hooks of a run are all derived from it.

Torch-free: the config imports every knob. A hook imports torch inside its methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from experiments.core.config_group import Group


class TrainingHook:
    """Where a knob acts on the shared training step (`TaskModule._step`); every default leaves
    training as it is, so a hook overrides only the point it needs.

    Hooks run in registry order: each `loss` receives the loss the one before returned, and each
    `train_step` wraps the objective the one before produced.
    """

    def loss(self, module: Any, out: Any, batch: dict[str, Any], loss: Any, stage: str) -> Any:
        """The loss of a batch's raw output `out` at `stage` (train, val or test), given `loss`."""
        return loss

    def train_step(self, module: Any, objective: Callable[[], Any]) -> Any:
        """The training loss to back-propagate; `objective()` runs the forward pass and returns its
        loss (it may be called several times: the first call is the clean pass that is logged)."""
        return objective()

    def lr_scales(self, module: Any) -> dict[str, float]:
        """A multiplier of the learning rate per parameter name (missing names: 1)."""
        return {}


@dataclass(frozen=True)
class Knob:
    """One knob, declared once.

    Args:
        group: its top-level config key (`adversarial` -> `adversarial.method`, ...).
        config: its `Group` of keys; each field's `description` is its `ecomlab config` help.
        description: one line for `ecomlab config` and the docs.
        refuse: `(cfg, task spec) -> problems`: one `key: why; what to use instead` line for each
            key the config's task or data cannot use (reported with every other config problem).
        hook: `cfg -> TrainingHook | None`: the hook a run attaches to its LightningModule (None when
            the knob is off or acts elsewhere: on the model, the data or the runner).
    """

    group: str
    config: type[Group]
    description: str
    refuse: Callable[[Any, Any], Iterable[str]] | None = None
    hook: Callable[[Any], TrainingHook | None] | None = None

    def problems(self, cfg: Any, spec: Any) -> list[str]:
        return list(self.refuse(cfg, spec)) if self.refuse else []

    def training_hook(self, cfg: Any) -> TrainingHook | None:
        return self.hook(cfg) if self.hook else None
