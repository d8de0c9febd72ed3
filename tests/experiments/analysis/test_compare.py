"""`ecomlab compare`: differing parameters only, sort/filter/top/CSV, studies, clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from experiments.analysis.compare import collect, table_rows
from experiments.cli import app
from experiments.config import experiment_id, validate
from experiments.core.errors import EcomlabError
from experiments.results import run_record
from experiments.run.train import train
from tests.conftest import tiny_config

runner = CliRunner()


@pytest.fixture
def two_runs(tmp_path: Path) -> list[str]:
    ids = []
    for lr in (1e-3, 3e-3):
        cfg = validate(tiny_config(optim={"lr": lr}, trainer={"max_epochs": 1}))
        train(cfg)
        ids.append(experiment_id(cfg))
    return ids


def test_only_the_parameters_that_differ_are_shown(tmp_path: Path, two_runs: list[str]) -> None:
    records = collect(two_runs, tmp_path / "runs", None)
    columns, rows = table_rows(records)
    params = [c for c in columns if "." in c]
    assert params == ["optim.lr"]  # not seed, data.path, model.backbone, ...
    # by default: the monitored metric and its test twin, duration, trainable parameters, size
    assert columns == [
        "experiment_id",
        "optim.lr",
        "val/f1",
        "test/f1",
        "time/total_s",
        "model/trainable_params",
        "model/size_mb",
    ]
    everything, _ = table_rows(records, show_all=True)
    assert {"val/f1", "test/acc", "best_epoch", "model/trainable_params", "model/sparsity"} <= set(everything)
    picked, _ = table_rows(records, metrics=["val/*", "test/f1"])
    assert "val/acc" in picked and "test/f1" in picked and "test/acc" not in picked
    with pytest.raises(EcomlabError, match="matches no metric"):
        table_rows(records, metrics=["val/auc*"])
    assert [r["optim.lr"] for r in rows] == [1e-3, 3e-3]


def test_sort_filter_top_and_csv(tmp_path: Path, two_runs: list[str]) -> None:
    records = collect(two_runs, tmp_path / "runs", None)
    _, rows = table_rows(records, sort="optim.lr")
    assert [r["optim.lr"] for r in rows] == [3e-3, 1e-3]
    _, rows = table_rows(records, sort="optim.lr", ascending=True, top=1)
    assert [r["optim.lr"] for r in rows] == [1e-3]
    _, rows = table_rows(records, filters=["optim.lr>0.002"])
    assert [r["experiment_id"] for r in rows] == [two_runs[1]]
    out = tmp_path / "cmp.csv"
    result = runner.invoke(app, ["compare", *two_runs, "--csv", str(out), "--sort", "test/acc"])
    assert result.exit_code == 0, result.output
    assert two_runs[0] in result.output and two_runs[1] in result.output
    with open(out) as f:
        table = list(csv.DictReader(f))
    assert {r["experiment_id"] for r in table} == set(two_runs) and "optim.lr" in table[0]


def test_unknown_targets_list_close_matches(tmp_path: Path, two_runs: list[str]) -> None:
    typo = two_runs[0][:-1] + ("0" if two_runs[0][-1] != "0" else "1")
    with pytest.raises(EcomlabError, match=f"Close matches: .*{two_runs[0]}"):
        collect([typo], tmp_path / "runs", None)
    with pytest.raises(EcomlabError, match="expected METRIC OP VALUE"):
        table_rows(collect(two_runs, tmp_path / "runs", None), filters=["val/f1 is high"])
    with pytest.raises(EcomlabError, match="no column 'val/auc'"):
        table_rows(collect(two_runs, tmp_path / "runs", None), sort="val/auc")


def test_a_study_name_compares_all_its_runs(tmp_path: Path) -> None:
    from tests.experiments.sweep.test_sweep import write_sweep

    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, budget={"n_trials": 2}))])
    assert result.exit_code == 0, result.output
    records = collect(["tiny"], tmp_path / "runs", None)
    assert len(records) == 2
    assert all(r.exp_id in {x.exp_id for x in run_record.list_records(tmp_path / "runs")} for r in records)
    columns, _ = table_rows(records)
    assert "optim.lr" in columns and "tracking.group" not in columns


def test_ten_runs_with_four_differing_parameters_fit_120_columns(tmp_path: Path) -> None:
    """Run records as `train` writes them (config.yaml, manifest.json, metrics.json), ten of them."""
    import json

    import yaml

    runs = tmp_path / "runs"
    ids = []
    for i in range(10):
        raw = tiny_config(
            optim={"lr": 1e-4 * (i + 1), "weight_decay": 0.01 * i, "warmup": 0.01 * i},
            model={"hidden_dropout": 0.05 * (i % 3)},
        )
        cfg = validate(raw)
        exp_id = experiment_id(cfg)
        ids.append(exp_id)
        (runs / exp_id).mkdir(parents=True)
        (runs / exp_id / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        (runs / exp_id / "manifest.json").write_text(json.dumps({"status": "completed"}))
        metrics = {
            "val/f1": 0.8 + i / 100,
            "test/f1": 0.79 + i / 100,
            "val/acc": 0.81,
            "test/acc": 0.8,
            "time/total_s": 123.456,
            "model/trainable_params": 22_713_218,
            "model/size_mb": 90.873,
            "model/sparsity": 0.0,
            "best_epoch": 2,
        }
        (runs / exp_id / "metrics.json").write_text(json.dumps(metrics))
    result = runner.invoke(app, ["compare", *ids, "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 120, "\n".join(lines)
    for exp_id in ids:  # one unfolded row per run
        assert sum(exp_id in line for line in lines) == 1
    header = next(line for line in lines if "weight_decay" in line)
    for name in ("lr", "warmup", "hidden_dropout", "val/f1", "test/f1", "trainable", "MB"):
        assert name in header, header
    row = next(line for line in lines if ids[0] in line)
    assert "22.7M" in row and "90.9" in row and "2 min 03 s" in row, row  # counts, sizes, times for reading
