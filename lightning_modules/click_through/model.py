"""The click-through network: categorical embeddings + numeric features -> MLP -> logit, torch only,
so an exported model loads (and `ecomlab serve` runs) without Lightning."""

from __future__ import annotations

import math

import torch
from torch import nn


class CtrModel(nn.Module):
    def __init__(
        self,
        cardinalities: list[int],
        n_numeric: int,
        embedding_dim: int,
        hidden: list[int],
        dropout: float,
        numeric_mean: list[float],
        numeric_std: list[float],
        logit_shift: float,
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_dim) for n in cardinalities)
        layers: list[nn.Module] = []
        width = embedding_dim * len(cardinalities) + n_numeric
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        self.register_buffer("numeric_mean", torch.tensor(numeric_mean, dtype=torch.float32))
        self.register_buffer("numeric_std", torch.tensor(numeric_std, dtype=torch.float32))
        self.register_buffer("logit_shift", torch.tensor(logit_shift, dtype=torch.float32))

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        """The training logit (on the negative-sampled distribution)."""
        emb = [e(categorical[:, i]) for i, e in enumerate(self.embeddings)]
        x = torch.cat([*emb, (numeric - self.numeric_mean) / self.numeric_std], dim=-1)
        return self.mlp(x).squeeze(-1)

    def calibrated(self, logit: torch.Tensor) -> torch.Tensor:
        """The logit of the true click probability (undoes negative sampling and click weighting)."""
        return logit + self.logit_shift


def binary_entropy(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))
