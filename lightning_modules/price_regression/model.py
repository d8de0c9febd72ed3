"""The price network: encoder + MLP, torch and transformers only, so an exported model loads (and
`ecomlab serve` runs) without Lightning."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class PriceModel(nn.Module):
    """Encoder + MLP, with the train split's standardisation kept as buffers (saved with the weights)."""

    def __init__(
        self,
        encoder: nn.Module,
        n_features: int,
        text_dim: int,
        hidden: int,
        dropout: float,
        stats: dict[str, Any],
        log_target: bool,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.mlp = nn.Sequential(
            nn.Linear(text_dim + n_features, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )
        self.log_target = log_target
        key = "log_price" if log_target else "price"
        self.register_buffer("feature_mean", torch.tensor(stats["feature_mean"], dtype=torch.float32))
        self.register_buffer("feature_std", torch.tensor(stats["feature_std"], dtype=torch.float32))
        self.register_buffer("target_mean", torch.tensor(stats[f"{key}_mean"], dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(stats[f"{key}_std"], dtype=torch.float32))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, features: torch.Tensor
    ) -> torch.Tensor:
        text = self.encoder(input_ids=input_ids, attention_mask=attention_mask).logits
        x = torch.cat([text, (features - self.feature_mean) / self.feature_std], dim=-1)
        return self.mlp(x).squeeze(-1)

    def scaled_target(self, price: torch.Tensor) -> torch.Tensor:
        t = torch.log1p(price) if self.log_target else price
        return (t - self.target_mean) / self.target_std

    def to_price(self, out: torch.Tensor) -> torch.Tensor:
        t = out * self.target_std + self.target_mean
        return torch.expm1(t) if self.log_target else t
