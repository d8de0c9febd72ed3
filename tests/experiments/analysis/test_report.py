"""`ecomlab report`: one self-contained HTML file with Optuna's figures, learning curves and a run table."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from experiments.analysis import figures
from experiments.analysis.compare import collect
from experiments.analysis.figures import history, identities, intermediate, run_figures
from experiments.analysis.report import build, curves
from experiments.cli import app
from experiments.core.errors import EcomlabError
from experiments.results.display import fmt_param
from tests.experiments.analysis.conftest import add_pruned_trial

runner = CliRunner()
STUDY_FIGURES = (
    "optimization_history",
    "intermediate_values",
    "parallel_coordinate",
    "slice",
    "contour",
    "param_importances",
)


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
    sources = re.findall(r' src="([^"]*)"', rest)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)  # embedded, not linked
    drawn = [n for n in STUDY_FIGURES if n != "param_importances"]
    for name in drawn:
        assert f'id="tiny-{name}-plot"' in rest, name
    assert 'id="learning_curves-val-plot"' in rest and 'id="learning_curves-train_loss-plot"' in rest
    # the figures carry the trials' data: every objective value and every run's experiment id
    for t in study.get_trials():
        assert t.user_attrs["experiment_id"] in rest
        assert repr(t.value)[:8] in rest
    # 3 complete trials are too few for importances: said in its place, with the count
    assert "Not drawn: a fair importance estimate needs 8 or more complete trials; this study has 3" in rest
    assert rest.count("Not drawn") == 1
    pngs = sorted(p.name for p in png.iterdir())
    assert pngs == sorted(
        [*(f"tiny-{n}.png" for n in drawn), "learning_curves-val.png", "learning_curves-train_loss.png"]
    )
    assert all((png / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_the_report_opens_on_the_best_trial_against_the_baseline(tmp_path: Path, study) -> None:
    add_pruned_trial(study)
    rest = outside_plotly_js(build(["tiny"], tmp_path / "runs", tmp_path / "r.html").html_path.read_text())
    first_figure = rest.index('<h2 id="tiny-optimization_history"')
    box = rest[rest.index('<section class="headline"') : rest.index("</section>")]
    assert rest.index('<section class="headline"') < first_figure
    best, base = study.best_trial, study.user_attrs["baseline"]
    diff = best.value - base["metrics"]["val/f1"]
    assert f"best trial #{best.number}" in box and best.user_attrs["experiment_id"] in box
    assert f"<th>val/f1</th><td>{best.value:.4f}</td><td>{base['metrics']['val/f1']:.4f}</td>" in box
    assert f"{diff:+.4f}" in box and ("above" if diff > 0 else "below") in box
    final = study.user_attrs["final_test"][str(best.number)]  # the test split, scored once at the end
    assert f"<th>test/f1</th><td>{final['test/f1']:.4f}</td>" in box
    for k, v in best.params.items():
        assert f"{k} = {fmt_param(v)}" in box
    assert "4 trial(s): 3 complete, 1 pruned" in box and "wall time" in box
    assert f"ecomlab reproduce {best.user_attrs['experiment_id']}" in box


def test_every_figure_names_and_colours_a_trial_the_same_way(tmp_path: Path, study) -> None:
    pruned = add_pruned_trial(study, value=0.25)
    records = collect(["tiny"], tmp_path / "runs", None)
    who = identities([study], records)
    hist = history(study, None).plotly()
    steps = intermediate(study).plotly()
    (val_curves, _) = (f.plotly() for f in run_figures(records, who))
    for t in study.get_trials():
        label, colour = f"#{t.number}", figures.PALETTE[t.number % len(figures.PALETTE)]
        if t.state.name == "COMPLETE":
            label += f" · {t.user_attrs['experiment_id'][:8]}"
            (curve,) = [d for d in val_curves.data if d.name == label]
            assert curve.line.color == colour
        marks = [(text, c) for d in hist.data if d.text for text, c in zip(d.text, d.marker.color)]
        assert (label, colour) in marks  # pruned trials too, at their last value
        (line,) = [d for d in steps.data if d.name.startswith(label)]
        assert line.line.color == colour
    (pruned_marks,) = [d for d in hist.data if d.name.startswith("pruned")]
    assert list(pruned_marks.y) == [0.25] and pruned_marks.marker.symbol == "x"
    assert list(pruned_marks.x) == [pruned.number]
    assert steps.layout.xaxis.title.text.startswith("epoch")


def test_optuna_plots_stay_readable(tmp_path: Path, study) -> None:
    slug = {f.slug.split("-", 1)[1]: f for f in figures.optuna_figures(study)}
    parallel = slug["parallel_coordinate"].plotly()
    lines = [d.line.color for d in parallel.data if d.mode == "lines" and d.customdata is not None]
    assert len(lines) == 3 and "rgb(255, 255, 255)" not in lines  # one line a trial, none white
    (bar,) = [d for d in parallel.data if d.marker and d.marker.colorscale]
    assert bar.marker.colorscale[0][1] == figures.VISIBLE_SCALE[0][1]
    sliced = slug["slice"].plotly()
    axes = {
        sliced.layout[k].title.text: sliced.layout[k].type for k in sliced.layout if k.startswith("xaxis")
    }
    assert axes["optim.lr"] == "log"  # searched on a log scale, drawn on one


def test_importances_wait_for_enough_trials_and_say_which_way_each_parameter_pulls() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    study = optuna.create_study(direction="maximize", study_name="synthetic")
    study.set_user_attr("metrics", [{"name": "val/f1", "goal": "maximize"}])
    dist = {"optim.lr": FloatDistribution(1e-5, 1e-3, log=True), "peft.r": CategoricalDistribution([0, 8])}
    for i in range(10):
        lr, r = 1e-5 * (1.6**i), [0, 8][i % 2]
        value = 0.5 + i / 50 - r / 100
        study.add_trial(
            optuna.trial.create_trial(params={"optim.lr": lr, "peft.r": r}, distributions=dist, value=value)
        )
    note = figures.directions_note(study)
    assert "optim.lr: higher values go with higher val/f1 (rank correlation +" in note
    assert "peft.r: 0 best on average" in note
    assert figures.optuna_figures(study)[-1].plotly().data  # 10 complete trials: drawn
    few = optuna.create_study(direction="maximize")
    few.add_trial(
        optuna.trial.create_trial(
            params={"optim.lr": 1e-4}, distributions={"optim.lr": dist["optim.lr"]}, value=0.5
        )
    )
    assert "this study has 1, too few" in figures.directions_note(few)


def test_the_runs_table_has_every_trial_the_best_highlighted_and_the_baseline(tmp_path: Path, study) -> None:
    pruned = add_pruned_trial(study)
    rest = outside_plotly_js(build(["tiny"], tmp_path / "runs", tmp_path / "r.html").html_path.read_text())
    start = rest.index('<table class="runs">')
    table = rest[start : rest.index("</table>", start)]
    rows = re.findall(r"<tr( class=\"\w+\")?>(.*?)</tr>", table)
    cells = [(cls, re.findall(r"<td[^>]*>(.*?)</td>", row)) for cls, row in rows[1:]]
    assert [c[0] for _, c in cells[:4]] == ["0", "1", "2", str(pruned.number)]
    best = study.best_trial
    (best_row,) = [c for cls, c in cells if cls == ' class="best"']
    assert best_row[0] == str(best.number) and best.user_attrs["experiment_id"][:12] in "".join(best_row)
    (pruned_row,) = [c for _, c in cells if c[0] == str(pruned.number)]
    assert pruned_row[1] == "PRUNED after 1 epoch (0.3000)"
    (baseline_row,) = [c for cls, c in cells if cls == ' class="baseline"']
    assert baseline_row[1] == f"baseline: {study.user_attrs['baseline']['name']}"
    assert '<div class="scroll">' in rest and 'onclick="sortBy(this)"' in rest
    assert ">1.09k<" in table, "counts are formatted for reading (1,090 trainable parameters)"
    assert re.search(r">\d+\.\d s<|>\d+ min \d\d s<", table), "times carry their unit"
    for t in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):  # each row opens its run
        exp_id = t.user_attrs["experiment_id"]
        assert f'href="#run-{exp_id}"' in table
        details = rest[rest.index(f'<details id="run-{exp_id}">') :]
        details = details[: details.index("</details>")]
        assert "<svg" in details  # its validation curve
        # the test split's confusion matrix: only the best trial was tested (once, at the end)
        assert ("data:image/png;base64," in details) == (t.number == best.number)


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
def test_the_report_renders_offline_in_headless_chromium_and_fits_1024_px(tmp_path: Path, study) -> None:
    out = tmp_path / "report.html"
    build(["tiny"], tmp_path / "runs", out)
    measure = (  # what a person sees at 1,024 x 768: the page's width, where the headline box sits
        "<script>window.addEventListener('load',()=>{const h=document.querySelector('.headline h2')"
        ";const r=h.getBoundingClientRect(),m=document.createElement('pre');m.id='measure';m.textContent="
        "JSON.stringify({page:document.documentElement.scrollWidth,top:r.top,bottom:r.bottom,"
        "text:h.textContent});document.body.appendChild(m);});</script></body>"
    )
    out.write_text(out.read_text().replace("</body>", measure))
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1024,768",
            "--virtual-time-budget=10000",
            "--dump-dom",
            out.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # plotly.js ran (no network here) and drew an SVG for each of the seven drawn figures
    assert dom.count('class="main-svg"') >= 7, dom[:500]
    seen = json.loads(html.unescape(dom.split('<pre id="measure">')[1].split("</pre>")[0]))
    best = study.best_trial
    assert seen["page"] <= 1024, "the runs table scrolls inside itself; the page does not"
    assert seen["bottom"] <= 768 and f"best trial #{best.number}" in seen["text"]  # the first screen
    assert best.user_attrs["experiment_id"] in seen["text"]
