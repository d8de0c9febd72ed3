"""The task-catalogue DataModules on fixtures in each data set's own format: what they read, which
rows their cleaning report names, and the messy-string parsers of the electronics listings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.electronics_products import (
    parse_discount,
    parse_price,
    parse_rating,
)
from experiments.config import validate
from experiments.config.registry import build_datamodule
from experiments.core.errors import DataError
from tests.conftest import FIXTURES


def _dm(data: dict, monkeypatch: pytest.MonkeyPatch | None = None, files: list[Path] | None = None):
    cfg = validate(
        {
            "data": {"val_fraction": 0.2, "test_fraction": 0.2, "max_length": 32, **data},
            "model": {"backbone": "tiny", "tiny": {"hidden": 32, "vocab_size": 200}},
        }
    )
    dm = build_datamodule(cfg)
    if files is not None:
        monkeypatch.setattr(dm, "source_files", lambda: files)
    return dm


def test_electronics_products_categories_and_bad_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    path = FIXTURES / "electronics" / "electronics_dataset.csv"
    dm = _dm({"dataset": "electronics_products"}, monkeypatch, [path])
    dm.setup()
    rep = dm.report
    assert rep.rows_read == 40
    assert rep.examples["empty_text"] == ["electronics_dataset.csv row 39"]
    assert rep.examples["unknown_label"] == ["electronics_dataset.csv row 40 (label 'Projectors')"]
    assert dm.label_names[:3] == ["Batteries", "Cameras & Camcorders", "Desktop Computers & PCs"]
    assert sum(dm.split_sizes().values()) == 38


def test_electronics_messy_strings_parse() -> None:
    assert parse_price("$20.99 ") == 20.99
    assert parse_price("$1,149.99through-$1,499.99") == 1149.99
    assert parse_price("See price in cart") is None and parse_price("") is None
    assert parse_rating("Rated 4.8 out of 5 stars based on 125 reviews.") == (4.8, 125)
    assert parse_rating("") is None
    assert parse_discount("After $200 OFF") == 200.0
    assert parse_discount("No Discount") == 0.0 and parse_discount("Price valid through 1/14/24") == 0.0


def test_banking77_keeps_the_test_file_and_reports_bad_rows() -> None:
    dm = _dm({"dataset": "banking77", "path": str(FIXTURES / "banking77")})
    dm.setup()
    rep = dm.report
    assert rep.rows_read == 35  # 24 + 1 empty train rows (the malformed one counted too), 10 test rows
    assert rep.examples["malformed"] == ["train.csv line 27"]
    assert rep.examples["empty_text"] == ["train.csv line 26"]
    assert rep.examples["unknown_label"] == ["test.csv line 10 (label 'get_physical_card_pin')"]
    assert dm.label_names == ["card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed"]
    sizes = dm.split_sizes()
    assert sizes["test"] == 8  # exactly the test file's valid rows
    assert sizes["train"] + sizes["val"] == 24 and sizes["val"] == 4  # one per intent held out


def test_banking77_without_a_path_or_datasets_is_a_clear_error(tmp_path: Path) -> None:
    dm = _dm({"dataset": "banking77", "path": str(tmp_path)})
    with pytest.raises(DataError, match="has no train.csv, test.csv"):
        dm.setup()


def test_fake_reviews_labels_and_bad_rows() -> None:
    dm = _dm({"dataset": "fake_reviews", "path": str(FIXTURES / "fake_reviews.csv"), "with_category": True})
    dm.setup()
    rep = dm.report
    assert rep.rows_read == 43
    assert rep.examples["unknown_label"] == ["fake_reviews.csv line 42 (label 'XX')"]
    assert rep.examples["empty_text"] == ["fake_reviews.csv line 43"]
    assert rep.examples["malformed"] == ["fake_reviews.csv line 44"]
    assert dm.label_names == ["original", "computer_generated"]  # the class to detect is the positive one
    assert dm.prepared().texts["train"][0].startswith("Home and Kitchen 5: ")


def test_electronics_prices_parse_messy_strings_and_report_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:

    path = FIXTURES / "electronics" / "electronics_dataset.csv"
    dm = _dm({"dataset": "electronics_prices"}, monkeypatch, [path])
    dm.setup()
    rep = dm.report
    assert rep.examples["unparseable_value"] == ["electronics_dataset.csv row 38 (price 'See price in cart')"]
    assert rep.examples["empty_text"] == ["electronics_dataset.csv row 39"]
    assert rep.kept == 38  # the range-priced row 37 and the uncategorised row 40 stay
    prices = sorted(float(p) for s in ("train", "val", "test") for p in dm.splits[s].labels)
    assert 1149.99 in [round(p, 2) for p in prices]  # "$1,149.99through-$1,499.99" -> its low end
    batch = dm.splits["train"].collate([0, 1])
    assert batch["labels"].dtype == torch.float32 and batch["features"].shape == (2, len(dm.meta["features"]))
    assert dm.meta["features"][-1] == "category=other" and len(dm.meta["feature_mean"]) == len(
        dm.meta["features"]
    )


def test_pc_prices_read_the_pinned_pickle_and_refuse_any_other(monkeypatch: pytest.MonkeyPatch) -> None:
    from datamodules import pc_prices
    from experiments.core.assets import sha256_file

    path = FIXTURES / "computers" / "Computers.pkl.compress"
    dm = _dm({"dataset": "pc_prices"}, monkeypatch, [path])
    with pytest.raises(DataError, match="refusing to unpickle"):  # not the pinned file
        dm.read()  # (a token-cache hit would not unpickle at all)
    monkeypatch.setattr(pc_prices, "MEMBER_SHA256", sha256_file(path))
    dm.setup()
    rep = dm.report
    assert rep.rows_read == 43
    assert rep.examples["duplicate"] == ["Computers row 41"]
    assert rep.examples["unparseable_value"] == ["Computers row 42", "Computers row 43 (price -5)"]
    assert rep.kept == 40 and dm.label_names == []
    assert dm.prepared().texts["train"][0].endswith("ads")  # the spec sheet, written out


OBD = FIXTURES / "obd" / "random" / "all"


def test_open_bandit_reports_bad_rows_and_splits_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from datamodules.open_bandit import OpenBanditData

    dm = _dm(
        {"dataset": "open_bandit", "batch_size": 16}, monkeypatch, [OBD / "all.csv", OBD / "item_context.csv"]
    )
    dm.setup()
    rep = dm.report
    assert rep.rows_read == 83
    assert rep.examples["malformed"] == ["random/all/all.csv line 82"]
    assert rep.examples["unparseable_value"] == ["random/all/all.csv line 83", "random/all/all.csv line 84"]
    assert dm.split_sizes() == {"train": 48, "val": 16, "test": 16}
    # time split: every train impression is earlier than every val one, and val earlier than test
    ranges = dm.meta["time_ranges"]
    assert ranges["train"][1] <= ranges["val"][0] and ranges["val"][1] <= ranges["test"][0]
    assert (
        dm.meta["class_counts"]["train"]["clicks"]
        + dm.meta["class_counts"]["val"]["clicks"]
        + dm.meta["class_counts"]["test"]["clicks"]
        == 9
    )
    assert dm.splits["train"].categorical.shape[1] == len(OpenBanditData.categorical)
    assert dm.splits["train"].categorical.min() >= 1  # index 0 is only for categories train never saw


def test_open_bandit_negative_sampling_keeps_every_click(monkeypatch: pytest.MonkeyPatch) -> None:
    dm = _dm(
        {"dataset": "open_bandit", "negative_sampling": 0.25, "split": "random"},
        monkeypatch,
        [OBD / "all.csv", OBD / "item_context.csv"],
    )
    dm.setup()
    full = _dm(
        {"dataset": "open_bandit", "split": "random"},
        monkeypatch,
        [OBD / "all.csv", OBD / "item_context.csv"],
    )
    full.setup()
    assert int(dm.splits["train"].labels.sum()) == int(full.splits["train"].labels.sum())
    assert len(dm.splits["train"]) < len(full.splits["train"]) and len(dm.splits["test"]) == len(
        full.splits["test"]
    )
    assert dm.meta["base_ctr"] == full.meta["base_ctr"]  # the click rate before sampling
