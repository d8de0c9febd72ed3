"""`ecomlab report`: one self-contained HTML file with Optuna's figures, learning curves and a run table."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from experiments.analysis.compare import collect
from experiments.analysis.report import build, curves
from experiments.cli import app
from experiments.core.errors import EcomlabError
from tests.conftest import tiny_config
from tests.experiments.sweep.test_sweep import study_of, sweep_cli, write_sweep

runner = CliRunner()
STUDY_FIGURES = ("optimization_history", "intermediate_values", "parallel_coordinate", "param_importances")


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory, asset_cache: Path) -> Path:
    """One real 3-trial tiny sweep, shared by this file's tests (they only read it)."""
    folder = tmp_path_factory.mktemp("report-study")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECOMLAB_CACHE", str(asset_cache))
        mp.setenv("ECOMLAB_RUNS", str(folder / "runs"))
        base = tiny_config(data={"batch_size": 8}, trainer={"max_epochs": 2})
        sweep_cli(str(write_sweep(folder, base=base, budget={"n_trials": 3})))
    return folder


@pytest.fixture
def study(study_dir: Path, tmp_path: Path):
    shutil.copytree(study_dir / "runs", tmp_path / "runs")
    return study_of(tmp_path)


def outside_plotly_js(page: str) -> str:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    assert page.count(js) == 1, "plotly.js must be embedded exactly once"
    return page.replace(js, "")


def test_report_of_a_study_is_self_contained_and_has_every_figure(tmp_path: Path, study) -> None:
    out, png = tmp_path / "report.html", tmp_path / "png"
    result = runner.invoke(app, ["report", "tiny", "--out", str(out), "--png", str(png)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    rest = outside_plotly_js(page)
    assert not re.search(r"https?://", rest), "the report must not load or link anything outside itself"
    assert " src=" not in rest
    for name in STUDY_FIGURES:
        assert f'id="tiny-{name}-plot"' in rest, name
    assert 'id="learning_curves-val-plot"' in rest and 'id="learning_curves-train_loss-plot"' in rest
    # the figures carry the trials' data: every objective value and every run's experiment id
    for t in study.get_trials():
        assert t.user_attrs["experiment_id"] in rest
        assert repr(t.value)[:8] in rest
    assert "Not drawn" not in rest
    pngs = sorted(p.name for p in png.iterdir())
    assert pngs == sorted(
        [
            *(f"tiny-{n}.png" for n in STUDY_FIGURES),
            "learning_curves-val.png",
            "learning_curves-train_loss.png",
        ]
    )
    assert all((png / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_learning_curves_are_the_training_epochs_of_each_run(tmp_path: Path, study) -> None:
    (rec, *_) = collect(["tiny"], tmp_path / "runs", None)
    c = curves(rec)
    # train() validates and tests the best checkpoint again after fitting; that pass is not an epoch
    assert [e for e, _ in c["val/f1"]] == list(range(rec.metrics["epochs_trained"]))
    assert len(c["train/loss"]) >= rec.metrics["epochs_trained"]
    # and the values are the logged ones, per epoch, as Optuna saw them
    trial = next(t for t in study.get_trials() if t.user_attrs["experiment_id"] == rec.exp_id)
    assert [v for _, v in c["val/f1"]] == pytest.approx(
        [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)]
    )


def test_report_of_runs_without_a_study_and_unknown_targets(tmp_path: Path, study) -> None:
    ids = [t.user_attrs["experiment_id"] for t in study.get_trials()][:2]
    rep = build(ids, tmp_path / "runs", tmp_path / "runs.html")
    assert rep.figures == ["learning_curves-val", "learning_curves-train_loss"]
    rest = outside_plotly_js((tmp_path / "runs.html").read_text())
    assert all(i in rest for i in ids) and "optimization_history" not in rest
    with pytest.raises(EcomlabError, match="Close matches: tiny"):
        build(["tinny"], tmp_path / "runs", tmp_path / "x.html")


@pytest.mark.browser
@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="Debian's chromium is not installed",
)
def test_the_report_renders_offline_in_headless_chromium(tmp_path: Path, study) -> None:
    out = tmp_path / "report.html"
    build(["tiny"], tmp_path / "runs", out)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            out.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # plotly.js ran (no network here) and drew an SVG for each of the six figures
    assert dom.count('class="main-svg"') >= 6, dom[:500]
