"""The generic file DataModule: cleaning report with row numbers, leak-free splits, token cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from experiments.config import validate
from experiments.config.registry import build_datamodule
from experiments.core.errors import DataError
from tests.conftest import FIXTURES, tiny_config


def make(tmp_path: Path | None = None, **data) -> Any:
    cfg = validate(tiny_config(data=data))
    return build_datamodule(cfg)


def test_csv_cleaning_report_counts_and_names_every_bad_row() -> None:
    dm = make()
    dm.setup()
    rep = dm.report
    assert rep.rows_read == 103
    assert rep.dropped == {
        "malformed": 1,
        "undecodable": 1,
        "unparseable_value": 0,
        "empty_text": 1,
        "missing_label": 0,
        "unknown_label": 1,
        "conflicting_label": 2,
        "duplicate": 1,
    }
    assert rep.kept == 96
    assert rep.examples["malformed"] == ["reviews.csv line 103 (3 fields, header has 2)"]
    assert rep.examples["undecodable"] == ["reviews.csv line 104"]
    assert rep.examples["empty_text"] == ["reviews.csv line 98"]
    assert rep.examples["duplicate"] == ["reviews.csv line 99"]
    assert rep.examples["unknown_label"] == ["reviews.csv line 102 (label 'neutral')"]
    assert rep.examples["conflicting_label"] == ["reviews.csv line 100", "reviews.csv line 101"]
    assert dm.label_names == ["negative", "positive"]


def test_report_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    make().setup()
    out = capsys.readouterr().out
    assert "Cleaning report" in out and "conflicting label" in out and "reviews.csv line 103" in out


def test_no_text_lands_in_two_splits_and_split_is_stratified_and_seeded() -> None:
    a, b, c = make(), make(), make(split_seed=1)
    prep = a.prepared()
    sets = {s: set(prep.texts[s]) for s in ("train", "val", "test")}
    assert (
        not (sets["train"] & sets["val"])
        and not (sets["train"] & sets["test"])
        and not (sets["val"] & sets["test"])
    )
    assert sum(len(v) for v in sets.values()) == 96
    for s in ("val", "test"):
        assert prep.labels[s].count("positive") == prep.labels[s].count("negative")
    assert b.prepared().texts == prep.texts
    assert c.prepared().texts != prep.texts


def test_subsample_is_stratified() -> None:
    prep = make(subsample=40).prepared()
    labels = [lab for s in ("train", "val", "test") for lab in prep.labels[s]]
    assert len(labels) == 40 and labels.count("positive") == 20


def test_jsonl_with_own_splits_and_bad_lines() -> None:
    dm = make(path=str(FIXTURES / "reviews.jsonl"), split_column="split")
    dm.setup()
    assert dm.report.dropped["malformed"] == 3
    assert dm.split_sizes() == {"train": 36, "val": 12, "test": 12}


def test_parquet_with_two_text_columns() -> None:
    dm = make(
        path=str(FIXTURES / "reviews.parquet"),
        text_columns=["title", "body"],
        val_fraction=0.25,
        test_fraction=0.25,
    )
    dm.setup()
    assert dm.report.dropped["empty_text"] == 1 and dm.report.kept == 40
    text = dm.prepared().texts["train"][0]
    assert text.split(" ")[0] in text.split(" ", 2)[-1]  # title joined before body


def test_labels_taken_from_data_when_not_given() -> None:
    dm = make(labels=None)
    dm.setup()
    assert dm.label_names == ["negative", "neutral", "positive"]


def test_token_cache_hit_and_miss(fresh_cache: Path) -> None:
    first = make()
    first.setup()
    assert first.cache_hit is False
    second = make()
    second.setup()
    assert second.cache_hit is True and second.cache_key == first.cache_key
    for s in ("train", "val", "test"):
        assert (second.splits[s].input_ids == first.splits[s].input_ids).all()
    longer = make(max_length=48)
    longer.setup()
    assert longer.cache_hit is False
    other_tokenizer = build_datamodule(validate(tiny_config(model={"tiny": {"vocab_size": 60}})))
    other_tokenizer.setup()
    assert other_tokenizer.cache_hit is False
    assert other_tokenizer.tokenizer_fingerprint != first.tokenizer_fingerprint


def test_data_is_cleaned_once_on_a_machine_even_by_builders_starting_together(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two DataModules set up at once (each holding its own OS file lock, as two processes do) and a
    later one with another max_length: one cleaning, the same splits for all three."""
    import threading
    import time

    from datamodules.text_classification_data import TextClassificationDataModule as DM

    cleanings = []
    real = DM._clean_and_split

    def slow_and_counted(self: Any) -> Any:
        cleanings.append(1)
        time.sleep(0.5)  # long enough for the other builder to arrive while this one holds the lock
        return real(self)

    monkeypatch.setattr(DM, "_clean_and_split", slow_and_counted)
    together = [make(), make()]
    threads = [threading.Thread(target=dm.setup) for dm in together]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    later = make(max_length=48)
    later.setup()
    assert len(cleanings) == 1
    assert later.cache_hit is False  # tokenised again for the new max_length, from the kept cleaning
    for dm in (*together, later):
        assert dm.prepared().texts == together[0].prepared().texts
        assert dm.report.to_dict() == together[0].report.to_dict()


def test_batches_are_trimmed_to_their_longest_text() -> None:
    dm = make(max_length=64)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"].sum(1).max() == batch["input_ids"].shape[1]
    assert batch["input_ids"].shape[0] == 16


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"path": "/nowhere/reviews.csv"}, "data.path: file not found: /nowhere/reviews.csv"),
        ({"label_column": "stars"}, "missing column(s) ['stars']"),
        ({"labels": ["good", "bad"]}, "no examples left after cleaning"),
    ],
)
def test_bad_input_gives_one_clear_error(data: dict, message: str) -> None:
    with pytest.raises(DataError) as exc:
        make(**data).setup()
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_empty_split_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "no_test.csv"
    path.write_text(
        "text,label,split\n"
        + "".join(f"review {i},positive,{'train' if i % 2 else 'val'}\n" for i in range(8))
    )
    with pytest.raises(DataError, match=r"split\(s\) test are empty \(train=4, val=4, test=0\)"):
        make(path=str(path), split_column="split", labels=None).setup()


def test_empty_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty"):
        make(path=str(path)).setup()
