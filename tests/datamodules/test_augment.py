"""Train-split augmentation: seeded, only on train, part of the token cache key."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from datamodules.augment import Augmentation, char, eda
from experiments.config import experiment_id, validate
from experiments.config.registry import build_datamodule
from experiments.core.errors import ConfigError
from tests.conftest import tiny_config

TEXTS = ["the dress fits well and the colour is lovely", "too small in the shoulders sadly", "great"]


def test_the_same_seed_gives_the_same_texts_and_another_seed_other_ones() -> None:
    a = Augmentation("eda", 0.3, 2, seed=7)
    assert a.copies_of(TEXTS) == a.copies_of(TEXTS)
    assert len(a.copies_of(TEXTS)) == 2 * len(TEXTS)
    assert Augmentation("eda", 0.3, 2, seed=8).copies_of(TEXTS) != a.copies_of(TEXTS)
    first, second = a.copies_of(TEXTS)[:3], a.copies_of(TEXTS)[3:]
    assert first[:2] != TEXTS[:2] and second[:2] != first[:2]  # each copy is edited anew


def test_eda_only_swaps_deletes_and_inserts_words_of_the_same_text() -> None:
    text = TEXTS[0]
    changed = 0
    for seed in range(50):
        out = eda(text, 0.2, random.Random(seed))
        assert set(out.split()) <= set(text.split()) and out.split()
        n_ops = round(0.2 * len(text.split()))  # 2 operations of +1, 0 or -1 words each
        assert abs(len(out.split()) - len(text.split())) <= n_ops
        changed += out != text
    assert changed > 40
    assert eda("great", 0.5, random.Random(0)) == "great"  # one word: nothing to swap or drop


def test_char_swaps_neighbours_or_deletes_characters() -> None:
    text = "质量很好，物流也很快，非常满意"
    for seed in range(50):
        out = char(text, 0.2, random.Random(seed))
        assert not Counter(out) - Counter(text)  # no character that was not there
        assert len(text) - round(0.2 * len(text)) <= len(out) <= len(text)


def test_only_the_train_split_is_augmented_and_the_cache_knows_it() -> None:
    plain_cfg = validate(tiny_config())
    aug_cfg = validate(tiny_config(augment={"method": "eda", "p": 0.2, "copies": 2}))
    assert experiment_id(aug_cfg) != experiment_id(plain_cfg)
    plain, aug = build_datamodule(plain_cfg), build_datamodule(aug_cfg)
    plain.setup("fit")
    aug.setup("fit")
    assert aug.cache_key != plain.cache_key and aug.tokenizer_fingerprint == plain.tokenizer_fingerprint
    for split in ("val", "test"):
        assert torch.equal(aug.splits[split].input_ids, plain.splits[split].input_ids)
        assert torch.equal(aug.splits[split].labels, plain.splits[split].labels)
    n = len(plain.splits["train"])
    train = aug.splits["train"]
    assert len(train) == 3 * n and aug.train_originals == n
    width = plain.splits["train"].input_ids.shape[1]
    assert torch.equal(train.input_ids[:n, :width], plain.splits["train"].input_ids)
    assert torch.equal(train.labels, plain.splits["train"].labels.repeat(3))
    assert not torch.equal(train.input_ids[n : 2 * n, :width], plain.splits["train"].input_ids)
    again = build_datamodule(aug_cfg)
    again.setup("fit")
    assert again.cache_hit and torch.equal(again.splits["train"].input_ids, train.input_ids)
    assert aug.meta["augment"] == {"method": "eda", "p": 0.2, "copies": 2, "seed": 7, "originals": n}


def test_an_augmented_run_reproduces() -> None:
    from experiments.run.reproduce import reproduce
    from experiments.run.train import train

    cfg = validate(tiny_config(trainer={"max_epochs": 1}, augment={"method": "char", "copies": 1}))
    metrics = train(cfg)
    assert metrics["val/loss"] > 0
    assert reproduce(experiment_id(cfg)).identical


def test_augmentation_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(ConfigError) as err:
        validate({"data": {"dataset": "dangdang_reviews"}, "augment": {"method": "eda"}})
    assert "augment.method: eda edits space-separated words, and 'dangdang_reviews' is Chinese" in str(
        err.value
    )
    validate({"data": {"dataset": "dangdang_reviews"}, "augment": {"method": "char"}})
    with pytest.raises(ConfigError) as err:
        validate({"data": {"dataset": "open_bandit"}, "augment": {"method": "char"}})
    assert "augment.method: task 'click_through' has no text encoder" in str(err.value)
