"""`ecomlab report`: one self-contained HTML file (and optionally PNGs) for a study or a set of runs.

The study figures are Optuna's own visualisations: plotly for the HTML, and Optuna's matplotlib
twins for `--png`. Learning curves come from each run record's `metrics.csv`. plotly.js is embedded
once, so the file opens offline; nothing is loaded from a URL.
"""

from __future__ import annotations

import csv
import html
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.analysis.compare import resolve, table_rows
from experiments.core.errors import EcomlabError
from experiments.results import run_record
from experiments.results.display import fmt_value


@dataclass
class Figure:
    slug: str  # file name of the PNG, and the HTML anchor
    title: str
    plotly: Callable[[], Any]
    matplotlib: Callable[[], Any]


@dataclass
class Report:
    html_path: Path
    figures: list[str] = field(default_factory=list)  # slugs drawn
    skipped: dict[str, str] = field(default_factory=dict)  # slug -> why
    pngs: list[Path] = field(default_factory=list)


# ---------------------------------------------------------------- learning curves from run records


def curves(rec: run_record.RunRecord) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(epoch or step, value)]} from a run record's metrics.csv, training epochs only.

    `train/loss` is per optimizer step; validation metrics are per epoch. The extra validation and
    test passes that `train()` runs on the best checkpoint after fitting are left out.
    """
    path = rec.path / "metrics.csv"
    if not path.is_file():
        return {}
    trained = (rec.metrics or {}).get("epochs_trained")
    out: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            epoch, step = int(row.get("epoch") or 0), int(row.get("step") or 0)
            for key, raw in row.items():
                if not raw or key in ("epoch", "step"):
                    continue
                if key == "train/loss_step":
                    out.setdefault("train/loss", []).append((step, float(raw)))
                elif key.startswith("val/") and (trained is None or epoch < trained):
                    out.setdefault(key, []).append((epoch, float(raw)))
    return out


def _monitor(rec: run_record.RunRecord) -> str:
    return str((rec.config.get("trainer") or {}).get("monitor", "val/loss"))


def _curve_series(
    records: list[run_record.RunRecord], which: str
) -> list[tuple[str, list[tuple[int, float]]]]:
    series = []
    for rec in records:
        name = _monitor(rec) if which == "val" else "train/loss"
        points = curves(rec).get(name)
        if points:
            series.append((f"{rec.exp_id} ({name})" if which == "val" else rec.exp_id, points))
    return series


def _plotly_curves(series: list[tuple[str, list[tuple[int, float]]]], x_title: str, y_title: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, points in series:
        fig.add_trace(
            go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=name)
        )
    fig.update_layout(xaxis_title=x_title, yaxis_title=y_title, height=420)
    return fig


def _mpl_curves(series: list[tuple[str, list[tuple[int, float]]]], x_title: str, y_title: str) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, points in series:
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=name)
    ax.set_xlabel(x_title)
    ax.set_ylabel(y_title)
    if len(series) <= 12:
        ax.legend(fontsize=7)
    return ax


# ---------------------------------------------------------------- figures


def _baseline_line(
    draw: Callable[[], Any], value: float | None, label: str, plotly: bool
) -> Callable[[], Any]:
    """`draw` with a dashed horizontal line at the baseline's value (when there is one)."""
    if value is None:
        return draw

    def drawn() -> Any:
        fig = draw()
        if plotly:
            fig.add_hline(y=value, line_dash="dash", line_color="grey", annotation_text=label)
        else:
            fig.axhline(value, linestyle="--", color="grey", label=label)
            fig.legend(fontsize=7)
        return fig

    return drawn


def study_figures(study: Any, baseline: bool = True) -> list[Figure]:
    """Optuna's figures for one study (plotly and matplotlib versions of each); the optimisation
    history has the task's baseline as a dashed line."""
    import optuna.visualization as pv
    import optuna.visualization.matplotlib as mv

    metrics = study.user_attrs.get("metrics") or [{"name": "value", "goal": "maximize"}]
    names = [m["name"] for m in metrics]
    n = study.study_name
    base = study.user_attrs.get("baseline") if baseline else None
    base_value = (base or {}).get("metrics", {}).get(names[0])
    label = f"baseline: {base['name']} ({base_value:.4f})" if base_value is not None else ""

    def history(**kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
        return (
            _baseline_line(lambda: pv.plot_optimization_history(study, **kw), base_value, label, True),
            _baseline_line(lambda: mv.plot_optimization_history(study, **kw), base_value, label, False),
        )

    if len(names) == 1:
        kw: dict[str, Any] = {"target_name": names[0]}
        figs = [
            Figure(
                f"{n}-optimization_history",
                f"{n}: optimisation history" + (" (dashed: the baseline)" if label else ""),
                *history(**kw),
            ),
            Figure(
                f"{n}-intermediate_values",
                f"{n}: intermediate values per epoch (pruned trials included)",
                lambda: pv.plot_intermediate_values(study),
                lambda: mv.plot_intermediate_values(study),
            ),
        ]
    else:
        kw = {"target": lambda t: t.values[0], "target_name": names[0]}
        figs = [
            Figure(
                f"{n}-pareto_front",
                f"{n}: Pareto front",
                lambda: pv.plot_pareto_front(study, target_names=names),
                lambda: mv.plot_pareto_front(study, target_names=names),
            ),
            Figure(
                f"{n}-optimization_history",
                f"{n}: optimisation history of {names[0]}" + (" (dashed: the baseline)" if label else ""),
                *history(**kw),
            ),
        ]
    figs += [
        Figure(
            f"{n}-parallel_coordinate",
            f"{n}: parallel coordinates ({names[0]})",
            lambda: pv.plot_parallel_coordinate(study, **kw),
            lambda: mv.plot_parallel_coordinate(study, **kw),
        ),
        Figure(
            f"{n}-param_importances",
            f"{n}: parameter importances ({names[0]})",
            lambda: pv.plot_param_importances(study, **kw),
            lambda: mv.plot_param_importances(study, **kw),
        ),
    ]
    return figs


def run_figures(records: list[run_record.RunRecord]) -> list[Figure]:
    val, loss = _curve_series(records, "val"), _curve_series(records, "loss")
    return [
        Figure(
            "learning_curves-val",
            "Learning curves: each run's monitored validation metric per epoch",
            lambda: _plotly_curves(val, "epoch", "validation metric"),
            lambda: _mpl_curves(val, "epoch", "validation metric"),
        ),
        Figure(
            "learning_curves-train_loss",
            "Learning curves: training loss per step",
            lambda: _plotly_curves(loss, "step", "train/loss"),
            lambda: _mpl_curves(loss, "step", "train/loss"),
        ),
    ]


def _usable(fig: Any) -> str | None:
    """Why a plotly figure is not worth showing (no data), or None."""
    if not fig.data:
        return "not enough data yet (it needs completed trials, and for importances two or more)"
    return None


# ---------------------------------------------------------------- HTML


def wandb_link(rec: run_record.RunRecord) -> str:
    t = rec.manifest.get("tracking") or {}
    if t.get("url"):
        return f'<a href="{html.escape(t["url"])}">{html.escape(str(t.get("run_id")))}</a>'
    if t.get("mode") == "offline":
        runs = sorted((rec.path / "wandb").glob("offline-run-*"))
        where = html.escape(str(runs[-1])) if runs else "wandb/"
        return f'offline <code title="{where}">{html.escape(str(t.get("run_id")))}</code> (ecomlab sync)'
    return "-"


def runs_table(records: list[run_record.RunRecord]) -> str:
    if not records:
        return "<p>No run records.</p>"
    columns, rows = table_rows(records)
    by_id = {r.exp_id: r for r in records}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [*columns, "W&B"])
    body = []
    for row in rows:
        cells = "".join(f"<td>{html.escape(fmt_value(row.get(c)))}</td>" for c in columns)
        body.append(f"<tr>{cells}<td>{wandb_link(by_id[row['experiment_id']])}</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;font-size:.8em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}.skipped{color:#777;font-style:italic}nav a{margin-right:1em}
"""


def _page(title: str, sections: list[str], nav: list[tuple[str, str]]) -> str:
    from plotly.offline import get_plotlyjs

    links = "".join(f'<a href="#{html.escape(s)}">{html.escape(t)}</a>' for s, t in nav)
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{STYLE}</style>\n<script type="text/javascript">{get_plotlyjs()}</script>\n</head><body>'
        f"<h1>{html.escape(title)}</h1><p>Generated {generated} by <code>ecomlab report</code>.</p>"
        f"<nav>{links}</nav>{''.join(sections)}</body></html>\n"
    )


def build(
    targets: list[str],
    runs_root: Path,
    out: Path,
    storage_url: str | None = None,
    png_dir: Path | None = None,
    baseline: bool = True,
) -> Report:
    """Write the HTML report for study names and/or experiment ids; with `png_dir`, PNGs too."""
    import optuna

    records, studies = resolve(targets, runs_root, storage_url)
    if not records and not studies:
        raise EcomlabError("report: nothing to report; give study names or experiment ids.")
    figures = [f for s in studies for f in study_figures(s, baseline)] + run_figures(records)
    report = Report(out)
    sections, nav = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # "importances will be equal" on tiny studies
        for fig in figures:
            try:
                pfig = fig.plotly()
                why = _usable(pfig)
            except Exception as exc:  # noqa: BLE001 - Optuna refuses some studies (e.g. one trial)
                pfig, why = None, f"{type(exc).__name__}: {exc}"
            nav.append((fig.slug, fig.title))
            if why:
                report.skipped[fig.slug] = why
                sections.append(
                    f'<h2 id="{fig.slug}">{html.escape(fig.title)}</h2>'
                    f'<p class="skipped">Not drawn: {html.escape(why)}</p>'
                )
                continue
            pfig.update_layout(title=None)
            div = pfig.to_html(full_html=False, include_plotlyjs=False, div_id=fig.slug + "-plot")
            sections.append(f'<h2 id="{fig.slug}">{html.escape(fig.title)}</h2>{div}')
            report.figures.append(fig.slug)
            if png_dir is not None:
                report.pngs.append(_save_png(fig, png_dir))
    nav.append(("runs", "Runs"))
    sections.append(f'<h2 id="runs">Runs ({len(records)})</h2>{runs_table(records)}')
    summary = {
        "targets": targets,
        "studies": [s.study_name for s in studies],
        "runs": [r.exp_id for r in records],
        "baselines": {
            s.study_name: s.user_attrs["baseline"]
            for s in studies
            if baseline and s.user_attrs.get("baseline")
        },
    }
    sections.append(
        f'<script type="application/json" id="ecomlab-report">{html.escape(json.dumps(summary))}</script>'
    )
    title = "ecomlab report: " + ", ".join(targets)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_page(title, sections, nav), encoding="utf-8")
    return report


def _save_png(fig: Figure, png_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png_dir.mkdir(parents=True, exist_ok=True)
    ax = fig.matplotlib()
    figure = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
    figure.suptitle(fig.title, fontsize=10)
    path = png_dir / f"{fig.slug}.png"
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path
