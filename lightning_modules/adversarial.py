"""Adversarial training on the word embeddings, the one place `adversarial.*` acts.

Each training step the word embeddings' output gets a perturbation `delta` along the gradient of the
loss, and the loss on the perturbed input is added to the clean loss (times `weight`):

- FGM (Miyato et al., 2017): one step, `delta = epsilon * ||e|| * g / ||g||`, with `g` the gradient
  of the clean loss and `e` the example's word embeddings;
- PGD (Madry et al., 2018; as used for BERT by Zhu et al., FreeLB): `steps` ascent steps of size
  `alpha * ||e||` from zero, each projected back into the L2 ball of radius `epsilon * ||e||`.

Norms are per example (over its tokens and hidden units), and the sizes are relative to the
example's own embedding norm, so one `epsilon` means the same for a randomly initialised `tiny`
model (embeddings of norm ~0.2 a token) and a pretrained one (~1 a token): an absolute size that
is gentle for one destroys the other. The perturbation is added to the embedding
*output* by a forward hook, so the embedding weights are never written: they are bit-identical after
every step, whether they train, are frozen or sit under LoRA. The inner gradients are taken with
`torch.autograd.grad` on the perturbation only, so they leave no trace in the parameters' gradients
(and DDP's gradient hooks fire once, for the returned loss).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn


def per_example_norm(t: torch.Tensor) -> torch.Tensor:
    """The L2 norm of each example's slice, shaped to broadcast against `t`."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def ascend(
    delta: torch.Tensor, grad: torch.Tensor, step: float | torch.Tensor, epsilon: float | torch.Tensor
) -> torch.Tensor:
    """One normalised ascent step of size `step` from `delta`, projected into the `epsilon` ball
    (sizes per example: floats, or tensors shaped like `per_example_norm`)."""
    delta = delta + step * grad / per_example_norm(grad).clamp_min(1e-12)
    norm = per_example_norm(delta)
    return delta * torch.where(norm > epsilon, epsilon / norm.clamp_min(1e-12), torch.ones_like(norm))


@dataclass
class _Hook:
    delta: torch.Tensor | None = None  # added to the output when set
    output: torch.Tensor | None = None  # the last clean output (requires grad)


@contextmanager
def _hooked(embeddings: nn.Module, state: _Hook) -> Iterator[_Hook]:
    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        if state.delta is not None:
            return output + state.delta
        if not output.requires_grad:  # frozen embeddings (LoRA, freeze_layers): a leaf to differentiate
            output = output.detach().requires_grad_()
        state.output = output
        return output

    handle = embeddings.register_forward_hook(hook)
    try:
        yield state
    finally:
        handle.remove()


@dataclass
class Adversarial:
    """`loss(embeddings, objective)`: the clean loss plus `weight` times the loss at the perturbation.

    `objective()` runs the forward pass on the batch and returns the training loss; it is called once
    clean, `steps - 1` more times for PGD's inner steps, and once at the final perturbation.
    """

    method: str
    epsilon: float
    steps: int = 1
    alpha: float = 0.004
    weight: float = 1.0
    last_delta: torch.Tensor | None = field(default=None, repr=False)  # for tests and diagnostics

    def loss(
        self, embeddings: nn.Module, objective: Callable[[], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, clean loss)."""
        state = _Hook()
        with _hooked(embeddings, state):
            clean = objective()
            assert state.output is not None, "the objective never ran the word embeddings"
            (grad,) = torch.autograd.grad(clean, state.output, retain_graph=True)
            zero = torch.zeros_like(state.output)
            scale = per_example_norm(state.output.detach())  # sizes relative to each example's embeddings
            radius = self.epsilon * scale
            if self.method == "fgm":
                delta = ascend(zero, grad, radius, radius)
            else:
                delta = ascend(zero, grad, self.alpha * scale, radius)
                for _ in range(self.steps - 1):
                    state.delta = delta.detach().requires_grad_()
                    (grad,) = torch.autograd.grad(objective(), state.delta)
                    delta = ascend(state.delta.detach(), grad, self.alpha * scale, radius)
            state.delta = delta.detach()
            perturbed = objective()
        self.last_delta = state.delta
        return clean + self.weight * perturbed, clean


def word_embeddings(model: nn.Module) -> nn.Module:
    """The token-embedding table of the model's text encoder (under LoRA or a task head too)."""
    for mod in model.modules():
        get = getattr(mod, "get_input_embeddings", None)
        if callable(get):
            emb = get()
            if isinstance(emb, nn.Embedding):
                return emb
    raise ValueError(f"{type(model).__name__} has no text encoder with word embeddings")
