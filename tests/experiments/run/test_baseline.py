"""The task's cheap baseline: scikit-learn on exactly the run's split, fitted once per split, and
shown beside the best trial by the sweep, `study show`, `compare`, `report` and `ecomlab run`."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from typer.testing import CliRunner

from experiments.cli import app
from experiments.config import validate
from experiments.config.registry import build_datamodule
from experiments.run import baseline
from tests.conftest import tiny_config

runner = CliRunner()


def noisy_reviews(tmp_path: Path) -> Path:
    """300 reviews whose words only lean towards their label, so no classifier is perfect."""
    rng = random.Random(0)
    good, bad, plain = (
        ["great", "lovely", "soft", "perfect"],
        ["awful", "torn", "cheap", "late"],
        ["the", "dress", "size", "colour", "fit", "it"],
    )
    path = tmp_path / "noisy.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(300):
            label = rng.choice(["positive", "negative"])
            lean = good if label == "positive" else bad
            words = [rng.choice(lean if rng.random() < 0.35 else good + bad + plain) for _ in range(8)]
            w.writerow([" ".join(words) + f" r{i}", label])
    return path


def test_the_baseline_is_scikit_learn_on_the_runs_own_split(tmp_path: Path) -> None:
    cfg = validate(tiny_config(data={"path": str(noisy_reviews(tmp_path))}))
    got = baseline.compute(cfg)
    assert got is not None and got["name"] == "TF-IDF + logistic regression" and not got["cache_hit"]
    p = build_datamodule(cfg).prepared()  # the split every trial of this config trains on
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vec.fit_transform(p.texts["train"])
    x_val, x_test = vec.transform(p.texts["val"]), vec.transform(p.texts["test"])
    fits = {
        c: LogisticRegression(C=c, max_iter=3000).fit(x_train, p.labels["train"]) for c in (1.0, 10.0, 100.0)
    }
    c = max(fits, key=lambda c: f1_score(p.labels["val"], fits[c].predict(x_val), average="macro"))
    assert got["settings"] == {"C": c}
    assert got["metrics"]["test/f1"] == f1_score(p.labels["test"], fits[c].predict(x_test), average="macro")
    assert got["metrics"]["test/acc"] == accuracy_score(p.labels["test"], fits[c].predict(x_test))
    assert 0.55 < got["metrics"]["test/f1"] < 0.98  # a real, imperfect baseline on this data
    again = baseline.compute(cfg)
    assert again["cache_hit"] and again["metrics"] == got["metrics"]
    # max_length and batch sizes do not change the split; the split seed does
    assert baseline.compute(
        validate(tiny_config(data={"path": str(noisy_reviews(tmp_path)), "max_length": 16, "batch_size": 4}))
    )["cache_hit"]
    assert not baseline.compute(
        validate(tiny_config(data={"path": str(noisy_reviews(tmp_path)), "split_seed": 5}))
    )["cache_hit"]


def test_versus_says_by_how_much_and_which_way() -> None:
    base = {"name": "ridge", "metrics": {"val/rmse": 10.0}}
    assert baseline.versus(8.0, base, "val/rmse", "minimize") == (
        "val/rmse 8.0000 vs baseline 10.0000 (ridge): -2.0000, better"
    )
    assert baseline.versus(12.0, base, "val/rmse", "minimize").endswith("+2.0000, worse")
    assert baseline.versus(1.0, base, "model/latency_ms", "minimize") is None


def test_sweep_show_compare_report_and_run_put_the_baseline_beside_the_model(tmp_path: Path) -> None:
    spec = {
        "base": tiny_config(trainer={"max_epochs": 1}),
        "metric": {"name": "val/f1", "goal": "maximize"},
        "budget": {"n_trials": 1},
        "sampler": {"type": "random", "seed": 0},
        "parameters": {"optim.lr": {"values": [3e-3]}},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec))
    swept = runner.invoke(app, ["sweep", str(tmp_path / "tiny.yaml")])
    assert swept.exit_code == 0, swept.output
    assert "best trial 0: val/f1" in swept.output and "vs baseline" in swept.output
    assert "test/f1" in swept.output.split("best trial 0: val/f1")[1]  # the test twin too
    shown = runner.invoke(app, ["study", "show", "tiny"])
    assert "vs baseline 1.0000 (TF-IDF + logistic regression)" in shown.output
    assert "vs baseline" not in runner.invoke(app, ["study", "show", "tiny", "--no-baseline"]).output
    compared = runner.invoke(app, ["compare", "tiny"])
    assert (
        compared.exit_code == 0
        and "baseline: TF-IDF + logistic regression on the same split" in compared.output
    )
    assert any(
        line.lstrip("│ ").startswith("baseline") and "1.0000" in line for line in compared.output.splitlines()
    )
    assert runner.invoke(app, ["report", "tiny", "--out", str(tmp_path / "r.html")]).exit_code == 0
    page = (tmp_path / "r.html").read_text()
    assert "baseline: TF-IDF + logistic regression (1.0000)" in page  # the dashed line's label
    blob = page.split('id="ecomlab-report">')[1].split("</script>")[0].replace("&quot;", '"')
    assert json.loads(blob)["baselines"]["tiny"]["metrics"]["val/f1"] == 1.0
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(tiny_config(trainer={"max_epochs": 1})))
    ran = runner.invoke(app, ["run", str(tmp_path / "run.yaml"), "--force"])
    assert ran.exit_code == 0 and "this run: val/f1" in ran.output and "vs baseline" in ran.output


def test_no_baseline_fits_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a, **k):
        raise AssertionError("the baseline was fitted")

    monkeypatch.setattr(baseline, "compute", refuse)
    spec = {
        "base": tiny_config(trainer={"max_epochs": 1}),
        "metric": {"name": "val/f1", "goal": "maximize"},
        "budget": {"n_trials": 1},
        "parameters": {"optim.lr": {"values": [3e-3]}},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**spec, "name": "nob"}))
    result = runner.invoke(app, ["sweep", str(tmp_path / "s.yaml"), "--no-baseline"])
    assert result.exit_code == 0, result.output
    assert "vs baseline" not in result.output and "baseline was not fitted" not in result.output


@pytest.mark.parametrize(
    ("data", "files", "metric", "trivial"),
    [
        (
            {"dataset": "electronics_prices"},
            ["electronics/electronics_dataset.csv"],
            "test/rmse",
            "mean train price",
        ),
        (
            {"dataset": "open_bandit", "batch_size": 16},
            ["obd/random/all/all.csv", "obd/random/all/item_context.csv"],
            "test/auc",
            "train click rate",
        ),
    ],
    ids=["price", "click-through"],
)
def test_the_price_and_click_through_baselines_fit_on_fixtures(
    data: dict, files: list[str], metric: str, trivial: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import math

    from experiments.config.registry import TASKS
    from tests.conftest import FIXTURES

    cfg = validate(
        {
            "data": {"val_fraction": 0.2, "test_fraction": 0.2, "max_length": 32, **data},
            "model": {"backbone": "tiny", "tiny": {"hidden": 32, "vocab_size": 200}},
        }
    )
    dm = build_datamodule(cfg)
    monkeypatch.setattr(dm, "source_files", lambda: [FIXTURES / f for f in files])
    got = TASKS[cfg.task].baseline_fit()(dm, cfg)
    assert math.isfinite(got["metrics"][metric]) and got["trivial"]["name"] == trivial
    assert set(got["metrics"]) >= {metric, metric.replace("test/", "val/")}
