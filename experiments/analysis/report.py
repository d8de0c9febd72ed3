"""`ecomlab report`: one self-contained HTML file (and optionally PNGs) for a study or a set of runs.

It opens on the answer: a headline box per study (the best trial, its parameters, val and test
against the baseline with the difference, the trials by state, the wall time, the cheapest trial
within 0.01 of the best), then the figures (`experiments.analysis.figures`), then the runs table
(sortable, the best row highlighted, the baseline as a row, scrolling inside itself), then each run's
confusion matrix or residual plot and validation curve, embedded. plotly.js is embedded once and
the images inline, so the file opens offline; nothing is loaded from a URL.
"""

from __future__ import annotations

import base64
import html
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.analysis.compare import baseline_rows, resolve, short_names, table_rows, unsampled_keys
from experiments.analysis.figures import (
    Figure,
    Skip,
    Who,
    curves,
    history,
    identities,
    intermediate,
    objective_names,
    optuna_figures,
    report_unit,
    run_figures,
)
from experiments.core.errors import EcomlabError
from experiments.results import run_record
from experiments.results.display import fmt_cell, fmt_param, fmt_seconds, fmt_value, state_text
from experiments.results.trials import DEFAULT_COST, feasible, recommendation_lines, test_metrics

__all__ = ["Report", "build", "curves"]

MAX_EMBEDDED_RUNS = 100  # runs whose confusion matrix / residuals and curve are embedded


@dataclass
class Report:
    html_path: Path
    figures: list[str] = field(default_factory=list)  # slugs drawn
    skipped: dict[str, str] = field(default_factory=dict)  # slug -> why
    pngs: list[Path] = field(default_factory=list)


def _e(v: Any) -> str:
    return html.escape(str(v))


# ---------------------------------------------------------------- the headline


def _goal(study: Any, i: int = 0) -> str:
    metrics = study.user_attrs.get("metrics") or []
    return metrics[i]["goal"] if i < len(metrics) else study.directions[i].name.lower()


def _versus_rows(study: Any, trial: Any, base: dict[str, Any] | None) -> str:
    """Rows: each objective and its test twin, the trial's value, the baseline's, the difference."""
    recorded = {**(trial.user_attrs.get("metrics") or {}), **test_metrics(study, trial)}
    rows = []
    for i, name in enumerate(objective_names(study)):
        for metric in [name] + ([name.replace("val/", "test/", 1)] if name.startswith("val/") else []):
            value = trial.values[i] if metric == name else recorded.get(metric)
            b = (base or {}).get("metrics", {}).get(metric)
            if value is None and b is None:
                continue
            diff = value - b if value is not None and b is not None else None
            better = diff is not None and (diff > 0 if _goal(study, i) == "maximize" else diff < 0)
            cls = "" if diff is None or diff == 0 else ' class="better"' if better else ' class="worse"'
            rows.append(
                f"<tr><th>{_e(metric)}</th><td>{fmt_value(value)}</td><td>{fmt_value(b)}</td>"
                f"<td{cls}>{'-' if diff is None else f'{diff:+.4f}'}</td></tr>"
            )
    return "".join(rows)


def _states(study: Any) -> str:
    counts: dict[str, int] = {}
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    infeasible = sum(1 for t in trials if t.state.name == "COMPLETE" and not feasible(t))
    said = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    if infeasible:
        said += f" ({infeasible} of the complete break a constraint)"
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    return f"{len(trials)} trial(s): {said}" + (
        f" · wall time {fmt_seconds(wall)}" if wall is not None else ""
    )


def _beat_the_baseline(study: Any, base: dict[str, Any] | None) -> list[str]:
    """How many complete trials beat the baseline on the objective; which trial is best on test
    when that is not the best trial (known when trials were tested)."""
    name = objective_names(study)[0]
    b = (base or {}).get("metrics", {})
    maximize = _goal(study) == "maximize"
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and t.values]
    out = []
    if name in b and done:
        beat = [t for t in done if (t.values[0] > b[name]) == maximize and t.values[0] != b[name]]
        out.append(f"{len(beat)} of {len(done)} complete trials beat the baseline on {name}.")
    test = name.replace("val/", "test/", 1)
    tested = [(t, test_metrics(study, t).get(test)) for t in done]
    tested = [(t, v) for t, v in tested if v is not None]
    if len(tested) > 1:
        top, v = (max if maximize else min)(tested, key=lambda tv: tv[1])
        try:
            best = study.best_trial.number
        except ValueError:
            best = None
        if top.number != best:
            vs = f" ({v - b[test]:+.4f} against the baseline)" if test in b else ""
            out.append(
                f"On {test}, trial {_who(top)} is best ({v:.4f}{vs}); trials are chosen on {name}, "
                "so the best trial stays the one above."
            )
    return out


def _who(t: Any) -> str:
    exp_id = t.user_attrs.get("experiment_id")
    return f"#{t.number}" + (f" · {exp_id}" if exp_id else "")


def study_headline(study: Any, baseline: bool) -> str:
    """The box a study's section opens on."""
    n = study.study_name
    base = study.user_attrs.get("baseline") if baseline else None
    head = f'<section class="headline" id="{_e(n)}-answer">'
    states = f"<p>{_e(_states(study))}</p>"
    if len(study.directions) > 1:
        try:
            front = study.best_trials
        except ValueError:
            front = []
        if not front:
            return f"{head}<h2>{_e(n)}: no complete trial yet</h2>{states}</section>"
        names = objective_names(study)
        rows = "".join(
            f"<tr><th>{_e(_who(t))}</th>"
            + "".join(f"<td>{fmt_value(v)}</td>" for v in t.values)
            + f"<td>{_e(_params(t.params))}</td></tr>"
            for t in front
        )
        table = (
            f"<table class='vs'><tr><th>Pareto trial</th>{''.join(f'<th>{_e(m)}</th>' for m in names)}"
            f"<th>parameters</th></tr>{rows}</table>"
        )
        return (
            f"{head}<h2>{_e(n)}: {len(front)} trial(s) on the Pareto front</h2>{table}{states}"
            f"<p>Export them: <code>ecomlab export {_e(n)} --pareto --out {_e(n)}-pareto/</code></p></section>"
        )
    try:
        best = study.best_trial
    except ValueError:
        return f"{head}<h2>{_e(n)}: no complete trial meets the constraints yet</h2>{states}</section>"
    name = objective_names(study)[0]
    exp_id = best.user_attrs.get("experiment_id", "")
    vs = _versus_rows(study, best, base)
    verdict = ""
    if base and name in base.get("metrics", {}):
        diff = best.values[0] - base["metrics"][name]
        good = (diff > 0) == (_goal(study) == "maximize") and diff != 0
        word = "above" if diff > 0 else "below"
        verdict = (
            f'<p class="verdict {"better" if good else "worse"}">The best trial is {abs(diff):.4f} {word} '
            f"the baseline ({_e(base['name'])}) on {_e(name)}"
            + ("." if good else ": the search has not beaten the cheap model yet.")
            + "</p>"
        )
    table = (
        f"<table class='vs'><tr><th></th><th>best trial</th><th>baseline"
        f"{(': ' + _e(base['name'])) if base else ''}</th><th>difference</th></tr>{vs}</table>"
        if vs
        else ""
    )
    extra = "".join(f"<p>{_e(line)}</p>" for line in _beat_the_baseline(study, base))
    cheapest = ""
    if any(DEFAULT_COST in (t.user_attrs.get("metrics") or {}) for t in study.get_trials(deepcopy=False)):
        lines = recommendation_lines(study)[1:]
        cheapest = "<p>" + "<br>".join(_e(line) for line in lines) + "</p>"
    return (
        f"{head}<h2>{_e(n)}: best trial #{best.number} · <code>{_e(exp_id)}</code>, {_e(name)} "
        f"{best.values[0]:.4f}</h2>{verdict}{table}<p>Parameters: {_e(_params(best.params))}</p>{states}"
        f"{extra}{cheapest}<p>Reproduce: <code>ecomlab reproduce {_e(exp_id)}</code> · export: "
        f"<code>ecomlab export {_e(n)} --out {_e(n)}-best/</code></p></section>"
    )


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {fmt_param(v)}" for k, v in params.items()) or "(none searched)"


def runs_headline(records: list[run_record.RunRecord], baselines: list[dict[str, Any]]) -> str:
    """The box a report of runs (no study) opens on: the best run by its monitored metric."""
    scored = [
        (r, (r.metrics or {}).get(_monitor(r)))
        for r in records
        if isinstance((r.metrics or {}).get(_monitor(r)), (int, float))
    ]
    if not scored:
        return '<section class="headline"><h2>No finished run among these</h2></section>'
    monitors = {_monitor(r) for r, _ in scored}
    mode = {str((r.config.get("trainer") or {}).get("mode", "max")) for r, _ in scored}
    if len(monitors) > 1 or len(mode) > 1:
        return (
            f'<section class="headline"><h2>{len(records)} runs, monitoring {_e(", ".join(sorted(monitors)))}'
            "</h2><p>They monitor different metrics, so none is best; the table below lists each.</p></section>"
        )
    monitor = next(iter(monitors))
    best, value = (max if mode == {"max"} else min)(scored, key=lambda rv: rv[1])
    test = monitor.replace("val/", "test/", 1)
    lines = [f"{monitor} {value:.4f}", f"{test} {fmt_value((best.metrics or {}).get(test))}"]
    for b in baselines:
        if monitor in b:
            lines.append(f"baseline {b['name']}: {monitor} {b[monitor]:.4f} ({value - b[monitor]:+.4f})")
    return (
        f'<section class="headline"><h2>Best of {len(records)} runs by {_e(monitor)}: <code>{_e(best.exp_id)}</code>'
        f"</h2><p>{'<br>'.join(_e(x) for x in lines)}</p><p>Reproduce: <code>ecomlab reproduce "
        f"{_e(best.exp_id)}</code></p></section>"
    )


def _monitor(rec: run_record.RunRecord) -> str:
    return str((rec.config.get("trainer") or {}).get("monitor", "val/f1"))


# ---------------------------------------------------------------- the runs table


def wandb_link(rec: run_record.RunRecord) -> str:
    t = rec.manifest.get("tracking") or {}
    if t.get("url"):
        return f'<a href="{_e(t["url"])}">{_e(t.get("run_id"))}</a>'
    if t.get("mode") == "offline":
        runs = sorted((rec.path / "wandb").glob("offline-run-*"))
        where = _e(runs[-1]) if runs else "wandb/"
        return f'offline <code title="{where}">{_e(t.get("run_id"))}</code>'
    return "-"


def runs_table(
    records: list[run_record.RunRecord],
    studies: list[Any],
    baselines: list[dict[str, Any]],
    detailed: set[str],
) -> str:
    """Every trial of the studies (with or without a run record) and every other run: trial number,
    state, the parameters that differ, the objectives on val and test, time, size; sortable by any
    header, the best trial highlighted, the baselines as the last rows."""
    if not records and not studies:
        return "<p>No run records.</p>"
    objectives = [m for st in studies for m in objective_names(st)]
    columns, rows = table_rows(records, objectives=objectives or None, unsampled=unsampled_keys(studies))
    by_id = {row["experiment_id"]: row for row in rows}
    records_by_id = {r.exp_id: r for r in records}
    best_ids: set[str] = set()
    lines: list[dict[str, Any]] = []
    for st in studies:
        unit = report_unit(st)
        try:
            chosen = st.best_trials if len(st.directions) > 1 else [st.best_trial]
            best_ids |= {t.user_attrs.get("experiment_id") for t in chosen}
        except ValueError:
            pass
        for t in st.get_trials(deepcopy=False):
            exp_id = t.user_attrs.get("experiment_id")
            row = dict(by_id.pop(exp_id, {"experiment_id": exp_id or "-"}))
            for name, value in zip(objective_names(st), t.values or []):
                row[name] = value if t.state.name == "COMPLETE" else None
            if t.state.name != "COMPLETE":
                row.update({k: None for k in row if k.startswith(("val/", "test/"))})
            row.update(test_metrics(st, t))
            shown_state = state_text(
                {
                    "state": t.state.name,
                    "user_attrs": t.user_attrs,
                    "system_attrs": t.system_attrs,
                    "constraints": getattr(t, "constraints", None),
                    "intermediate_values": t.intermediate_values,
                },
                unit,
            )
            lines.append({**row, "#": t.number, "state": shown_state})
    for row in by_id.values():  # runs outside any study
        lines.append({**row, "#": None, "state": row.get("status", "?")})
    columns = ["#", "state", *columns]
    headers = {"#": "trial", "state": "state", **short_names(columns), "experiment_id": "experiment id"}
    head = (
        "".join(f'<th onclick="sortBy(this)" title="{_e(c)}">{_e(headers.get(c, c))}</th>' for c in columns)
        + "<th>W&amp;B</th><th>details</th>"
    )
    body = []
    for row in lines:
        exp_id = row.get("experiment_id")
        cells = "".join(_cell(c, row.get(c)) for c in columns)
        rec = records_by_id.get(exp_id)
        link = f'<a href="#run-{_e(exp_id)}" onclick="openRun(this)">show</a>' if exp_id in detailed else "-"
        cls = ' class="best"' if exp_id in best_ids else ""
        body.append(f"<tr{cls}>{cells}<td>{wandb_link(rec) if rec else '-'}</td><td>{link}</td></tr>")
    for b in baselines:
        row = {**b, "#": None, "state": f"baseline: {b['name']}", "experiment_id": b.get("where", "")}
        cells = "".join(_cell(c, row.get(c)) for c in columns)
        body.append(f'<tr class="baseline">{cells}<td>-</td><td>-</td></tr>')
    return (
        '<div class="scroll"><table class="runs"><thead><tr>'
        f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        "<p class='hint'>Click a header to sort. Highlighted: the best trial. The last rows are the "
        "baselines, fitted on the same split.</p>"
    )


def _cell(column: str, v: Any) -> str:
    sort = v if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
    text = fmt_cell(column, v)
    if column == "experiment_id" and v and len(str(v)) > 12:
        text = str(v)[:12] + "…"
    return f'<td data-v="{_e(sort)}" title="{_e(v if v is not None else "")}">{_e(text)}</td>'


# ---------------------------------------------------------------- each run, embedded


def run_details(records: list[run_record.RunRecord], who: dict[str, Who]) -> tuple[str, set[str]]:
    """A closed <details> per run (the first MAX_EMBEDDED_RUNS): its confusion matrix or residual
    plot as an inline PNG and its validation curve as inline SVG; and the ids that have one."""
    parts, ids = [], set()
    for rec in records[:MAX_EMBEDDED_RUNS]:
        inner = []
        for png in ("confusion_matrix.png", "residuals.png"):
            if (rec.path / png).is_file():
                data = base64.b64encode((rec.path / png).read_bytes()).decode()
                inner.append(f'<img alt="{png}" src="data:image/png;base64,{data}" width="420">')
        monitor = _monitor(rec)
        points = curves(rec).get(monitor)
        if points:
            inner.append(_svg_curve(points, monitor, who[rec.exp_id].colour))
        if inner:
            ids.add(rec.exp_id)
            parts.append(
                f'<details id="run-{_e(rec.exp_id)}"><summary>{_e(who[rec.exp_id].label)} '
                f"({_e(rec.exp_id)})</summary><div class='run'>{''.join(inner)}</div></details>"
            )
    return "".join(parts), ids


def _svg_curve(points: list[tuple[int, float]], name: str, colour: str, w: int = 320, h: int = 160) -> str:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    lo, hi = min(ys), max(ys)
    span_x, span_y = (max(xs) - min(xs)) or 1, (hi - lo) or 1
    pts = " ".join(
        f"{20 + (x - min(xs)) / span_x * (w - 40):.1f},{h - 20 - (y - lo) / span_y * (h - 40):.1f}"
        for x, y in points
    )
    return (
        f'<svg width="{w}" height="{h}" role="img" aria-label="{_e(name)} per validation">'
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>'
        f'<text x="4" y="14" font-size="11">{_e(name)}: {lo:.4f} to {hi:.4f}</text>'
        f'<text x="4" y="{h - 4}" font-size="11">{len(points)} validations</text></svg>'
    )


# ---------------------------------------------------------------- the page

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin-top:1.6em}
.headline{border:2px solid #4a6fa5;background:#f5f8fc;border-radius:6px;padding:.6em 1em;margin:1em 0}
.headline h2{margin:.2em 0 .5em}.headline p{margin:.35em 0}
.verdict.better{color:#1a7f37;font-weight:600}.verdict.worse{color:#b3261e;font-weight:600}
td.better{color:#1a7f37}td.worse{color:#b3261e}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}table.vs th{text-align:left}
.scroll{overflow:auto;max-width:100%;max-height:34em;border:1px solid #ddd}
table.runs{white-space:nowrap}table.runs th{cursor:pointer;position:sticky;top:0}
tr.best td{background:#fff3c4;font-weight:600}tr.baseline td{color:#666;font-style:italic}
.skipped{color:#777;font-style:italic}.note,.hint{color:#444;font-size:.9em}
nav a{margin-right:1em}details{margin:.3em 0}.run{display:flex;gap:1em;align-items:flex-start}
footer{color:#777;font-size:.8em;margin-top:2em}
"""

SCRIPT = """
function sortBy(th){const t=th.closest('table'),i=[...th.parentNode.children].indexOf(th),b=t.tBodies[0];
const keep=[...b.rows].filter(r=>r.classList.contains('baseline'));const rows=[...b.rows].filter(r=>!keep.includes(r));
const up=th.dataset.dir!=='asc';th.dataset.dir=up?'asc':'desc';
rows.sort((x,y)=>{const a=x.cells[i].dataset.v,c=y.cells[i].dataset.v;
if(a===''&&c==='')return 0;if(a==='')return 1;if(c==='')return -1;return up?a-c:c-a;});
rows.concat(keep).forEach(r=>b.appendChild(r));}
function openRun(a){const d=document.getElementById(a.getAttribute('href').slice(1));if(d)d.open=true;}
"""


def _page(title: str, top: list[str], sections: list[str], nav: list[tuple[str, str]]) -> str:
    from plotly.offline import get_plotlyjs

    links = "".join(f'<a href="#{_e(s)}">{_e(t)}</a>' for s, t in nav)
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style><script>{SCRIPT}</script>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head><body>'
        f"<h1>{_e(title)}</h1>{''.join(top)}<nav>{links}</nav>{''.join(sections)}"
        f"<footer>Generated {generated} by <code>ecomlab report</code>.</footer></body></html>\n"
    )


def _baseline_mark(study: Any, baseline: bool) -> tuple[float, str] | None:
    base = study.user_attrs.get("baseline") if baseline else None
    value = (base or {}).get("metrics", {}).get(objective_names(study)[0])
    return (value, f"baseline: {base['name']} ({value:.4f})") if value is not None and base else None


def study_figures(study: Any, baseline: bool = True) -> list[Figure]:
    """The figures of one study: the optimisation history (pruned trials marked, the baseline
    dashed) and intermediate values, or the Pareto front with several objectives; then Optuna's
    parallel coordinates, slice, contour and importances."""
    import optuna.visualization as pv
    import optuna.visualization.matplotlib as mv

    figs = [history(study, _baseline_mark(study, baseline)), intermediate(study)]
    if len(study.directions) > 1:
        names = objective_names(study)
        figs.insert(
            0,
            Figure(
                f"{study.study_name}-pareto_front",
                f"{study.study_name}: Pareto front",
                lambda: pv.plot_pareto_front(study, target_names=names),
                lambda: mv.plot_pareto_front(study, target_names=names),
            ),
        )
    return figs + optuna_figures(study)


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
    who = identities(studies, records)
    baselines = baseline_rows(records, studies) if baseline else []
    top = [study_headline(s, baseline) for s in studies] or [runs_headline(records, baselines)]
    figures = [f for s in studies for f in study_figures(s, baseline)] + run_figures(records, who)
    report = Report(out)
    sections, nav = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # "importances will be equal" on tiny studies
        for fig in figures:
            nav.append((fig.slug, fig.title.split(": ", 1)[-1].split(" (")[0]))
            try:
                pfig = fig.plotly()
                why = None if pfig.data else "nothing to draw yet"
            except Skip as exc:
                pfig, why = None, str(exc)
            except Exception as exc:  # noqa: BLE001 - Optuna refuses some studies (e.g. one trial)
                pfig, why = None, f"{type(exc).__name__}: {exc}"
            heading = f'<h2 id="{fig.slug}">{_e(fig.title)}</h2>'
            note = f'<p class="note">{_e(fig.note)}</p>' if fig.note else ""
            if why:
                report.skipped[fig.slug] = why
                sections.append(f'{heading}<p class="skipped">Not drawn: {_e(why)}</p>{note}')
                continue
            pfig.update_layout(title=None)
            div = pfig.to_html(full_html=False, include_plotlyjs=False, div_id=fig.slug + "-plot")
            sections.append(f"{heading}{div}{note}")
            report.figures.append(fig.slug)
            if png_dir is not None:
                report.pngs.append(_save_png(fig, png_dir))
    details, detailed = run_details(records, who)
    nav.append(("runs", "Runs"))
    sections.append(
        f'<h2 id="runs">Runs ({len(records)} records)</h2>{runs_table(records, studies, baselines, detailed)}'
    )
    if details:
        sections.append(
            f'<h2 id="run-details">Each run: confusion matrix or residuals, validation curve</h2>{details}'
        )
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
    sections.append(f'<script type="application/json" id="ecomlab-report">{_e(json.dumps(summary))}</script>')
    title = "ecomlab report: " + ", ".join(targets)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_page(title, top, sections, nav), encoding="utf-8")
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
