"""The report's figures: each a plotly figure for the HTML and a matplotlib twin for `--png`.

Every figure names a trial the same way (`#3 · 1a2b3c4d`: trial number and short experiment id) and
draws it in the same colour. The optimisation history and the intermediate values are drawn here,
not by Optuna's plots, because Optuna's history leaves pruned trials out and its intermediate-values
plot has no legend; parallel coordinates, slice, contour and importances are Optuna's, with a colour
scale that stays visible on a white page (Optuna's starts at white). Log-searched parameters keep
their log axes (Optuna draws them so).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from experiments.results import run_record

# plotly's "Dark24": distinct, all dark enough to read on white
PALETTE = (
    "#2E91E5 #E15F99 #1CA71C #FB0D0D #DA16FF #222A2A #B68100 #750D86 #EB663B #511CFB #00A08B #FB00D1 "
    "#FC0080 #B2828D #6C7C32 #778AAE #862A16 #A777F1 #620042 #1616A7 #DA60CA #6C4516 #0D2A63 #AF0038"
).split()
VISIBLE_SCALE = [[0.0, "#9ecae1"], [1.0, "#08306b"]]  # light blue to dark blue, never white
MIN_TRIALS_FOR_IMPORTANCE = 8  # fANOVA over fewer complete trials says more about the noise


@dataclass
class Figure:
    slug: str  # file name of the PNG, and the HTML anchor
    title: str
    plotly: Callable[[], Any]
    matplotlib: Callable[[], Any]
    note: str = ""  # shown under the figure (HTML) — what it rests on, how to read it


class Skip(Exception):
    """A figure not worth drawing; the message says why (shown in its place)."""


@dataclass(frozen=True)
class Who:
    """How one run is named and coloured in every figure of a report."""

    label: str
    colour: str


def identities(studies: list[Any], records: list[run_record.RunRecord]) -> dict[str, Who]:
    """{experiment id: Who} for every trial's run and every other run: a study's trial by its number
    and short id, coloured by number; a run outside a study by its short id."""
    out: dict[str, Who] = {}
    for st in studies:
        for t in st.get_trials(deepcopy=False):
            if exp_id := t.user_attrs.get("experiment_id"):
                out.setdefault(exp_id, Who(f"#{t.number} · {exp_id[:8]}", PALETTE[t.number % len(PALETTE)]))
    for i, r in enumerate(records):
        out.setdefault(r.exp_id, Who(r.exp_id[:8], PALETTE[(i + 7) % len(PALETTE)]))
    return out


def trial_who(t: Any) -> Who:
    exp_id = t.user_attrs.get("experiment_id") or ""
    return Who(f"#{t.number}" + (f" · {exp_id[:8]}" if exp_id else ""), PALETTE[t.number % len(PALETTE)])


def objective_names(study: Any) -> list[str]:
    return [m["name"] for m in (study.user_attrs.get("metrics") or [{"name": "value"}])]


def reported_name(study: Any, trials: list[Any]) -> str:
    """What the trials' intermediate values are: the first objective, or the sweep's `pruner.metric`
    (-val/loss) that each trial names; both when a changed study holds both."""
    names = {t.user_attrs.get("reported") or objective_names(study)[0] for t in trials}
    return " / ".join(sorted(names)) or objective_names(study)[0]


def report_unit(study: Any) -> str:
    return str(study.user_attrs.get("report_unit", "epoch"))


# ---------------------------------------------------------------- optimisation history


def _history_points(
    study: Any,
) -> tuple[list[tuple[Any, float]], list[tuple[Any, float]], list[tuple[int, float]]]:
    """(complete trials with their value, pruned trials with their last reported value, the best so far)."""
    maximize = study.directions[0].name == "MAXIMIZE"
    done, pruned, best = [], [], []
    current: float | None = None
    for t in study.get_trials(deepcopy=False):
        if t.state.name == "COMPLETE" and t.values:
            v = t.values[0]
            done.append((t, v))
            feasible = all(c <= 0 for c in (getattr(t, "constraints", None) or {}).values())
            if feasible and (current is None or (v > current if maximize else v < current)):
                current = v
        elif t.state.name == "PRUNED" and t.intermediate_values and not t.user_attrs.get("reported"):
            # (with `pruner.metric` the reports are another metric, on another scale: left out here)
            pruned.append((t, t.intermediate_values[max(t.intermediate_values)]))
        if current is not None:
            best.append((t.number, current))
    return done, pruned, best


def history(study: Any, baseline: tuple[float, str] | None) -> Figure:
    name = objective_names(study)[0]
    unit = report_unit(study)

    def plotly() -> Any:
        import plotly.graph_objects as go

        done, pruned, best = _history_points(study)
        if not done and not pruned:
            raise Skip("no trial has finished or reported yet")
        fig = go.Figure()
        for points, symbol, state in ((done, "circle", "complete"), (pruned, "x", "pruned")):
            if not points:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[t.number for t, _ in points],
                    y=[v for _, v in points],
                    mode="markers",
                    name=state if state == "complete" else f"pruned (last {unit})",
                    marker={"symbol": symbol, "size": 11, "color": [trial_who(t).colour for t, _ in points]},
                    text=[trial_who(t).label for t, _ in points],
                    hovertemplate="%{text}<br>" + name + " %{y:.4f}<extra>" + state + "</extra>",
                )
            )
        if best:
            fig.add_trace(
                go.Scatter(
                    x=[n for n, _ in best],
                    y=[v for _, v in best],
                    mode="lines",
                    name="best so far",
                    line={"color": "#444", "shape": "hv"},
                )
            )
        if baseline:
            fig.add_hline(y=baseline[0], line_dash="dash", line_color="grey", annotation_text=baseline[1])
        fig.update_layout(xaxis_title="trial", yaxis_title=name, height=420, legend_title_text="")
        return fig

    def mpl() -> Any:
        import matplotlib.pyplot as plt

        done, pruned, best = _history_points(study)
        if not done and not pruned:
            raise Skip("no trial has finished or reported yet")
        _, ax = plt.subplots(figsize=(8, 4.5))
        for points, marker, label in ((done, "o", "complete"), (pruned, "x", f"pruned (last {unit})")):
            if points:
                ax.scatter(
                    [t.number for t, _ in points],
                    [v for _, v in points],
                    marker=marker,
                    label=label,
                    c=[trial_who(t).colour for t, _ in points],
                )
        if best:
            ax.step(
                [n for n, _ in best], [v for _, v in best], where="post", color="#444", label="best so far"
            )
        if baseline:
            ax.axhline(baseline[0], linestyle="--", color="grey", label=baseline[1])
        ax.set_xlabel("trial")
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
        return ax

    title = f"{study.study_name}: optimisation history (x: pruned trials at their last value"
    return Figure(
        f"{study.study_name}-optimization_history",
        title + (", dashed: the baseline)" if baseline else ")"),
        plotly,
        mpl,
    )


# ---------------------------------------------------------------- intermediate values


def intermediate(study: Any) -> Figure:
    unit = report_unit(study)
    trials = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values]
    name = reported_name(study, trials)

    def plotly() -> Any:
        import plotly.graph_objects as go

        if not trials:
            raise Skip("no trial has reported an intermediate value yet")
        fig = go.Figure()
        for t in trials:
            who, steps = trial_who(t), sorted(t.intermediate_values)
            pruned = t.state.name == "PRUNED"
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=[t.intermediate_values[s] for s in steps],
                    mode="lines+markers",
                    name=who.label + (" (pruned)" if pruned else ""),
                    line={"color": who.colour, "dash": "dot" if pruned else "solid"},
                    marker={"symbol": ["circle"] * (len(steps) - 1) + ["x" if pruned else "circle"]},
                )
            )
        fig.update_layout(xaxis_title=f"{unit} (0 = the first)", yaxis_title=name, height=420)
        return fig

    def mpl() -> Any:
        import matplotlib.pyplot as plt

        if not trials:
            raise Skip("no trial has reported an intermediate value yet")
        _, ax = plt.subplots(figsize=(8, 4.5))
        for t in trials:
            who, steps = trial_who(t), sorted(t.intermediate_values)
            pruned = t.state.name == "PRUNED"
            ax.plot(
                steps,
                [t.intermediate_values[s] for s in steps],
                marker="o",
                markersize=3,
                color=who.colour,
                linestyle=":" if pruned else "-",
                label=who.label + (" (pruned)" if pruned else ""),
            )
        ax.set_xlabel(f"{unit} (0 = the first)")
        ax.set_ylabel(name)
        if len(trials) <= 16:
            ax.legend(fontsize=7)
        return ax

    return Figure(
        f"{study.study_name}-intermediate_values",
        f"{study.study_name}: {name} at each {unit}, every trial (dotted: pruned)",
        plotly,
        mpl,
    )


# ---------------------------------------------------------------- Optuna's own plots, made legible


def _visible(fig: Any) -> Any:
    """Optuna's plotly figure with a colour scale that starts above white: colour bars and markers
    take VISIBLE_SCALE, and the lines of the parallel-coordinates plot (one a trial, its first
    coordinate the objective scaled to 0..1) are recoloured along it, darker for a higher value."""
    from plotly.colors import find_intermediate_color, hex_to_rgb, label_rgb

    light, dark = (hex_to_rgb(c) for _, c in VISIBLE_SCALE)
    for trace in fig.data:
        marker = getattr(trace, "marker", None)
        if marker is not None and marker.colorscale is not None:
            marker.colorscale = VISIBLE_SCALE
        if trace.type == "contour":
            trace.colorscale = VISIBLE_SCALE
        if trace.type == "scatter" and trace.mode == "lines" and trace.customdata is not None and trace.y:
            at = min(1.0, max(0.0, float(trace.y[0])))
            trace.line.color = label_rgb(find_intermediate_color(light, dark, at))
            trace.opacity = 0.8
    return fig


def _complete(study: Any) -> list[Any]:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]


def _kw(study: Any) -> dict[str, Any]:
    names = objective_names(study)
    if len(study.directions) > 1:
        return {"target": lambda t: t.values[0], "target_name": names[0]}
    return {"target_name": names[0]}


def optuna_figures(study: Any) -> list[Figure]:
    """Parallel coordinates, slice, contour (the two most important parameters) and importances."""
    import optuna.visualization as pv
    import optuna.visualization.matplotlib as mv

    n, name, kw = study.study_name, objective_names(study)[0], _kw(study)
    complete = _complete(study)
    params = sorted({p for t in complete for p in t.params})

    def needs(k: int, what: str) -> None:
        if len(complete) < k:
            raise Skip(f"{what} needs {k} or more complete trials; this study has {len(complete)}")

    def parallel() -> Any:
        needs(2, "a parallel-coordinates plot")
        return _visible(pv.plot_parallel_coordinate(study, **kw))

    def slice_() -> Any:
        needs(1, "a slice plot")
        return _visible(pv.plot_slice(study, **kw))

    def pair() -> list[str]:
        needs(3, "a contour plot")
        if len(params) < 2:
            raise Skip("a contour plot needs two searched parameters")
        ranked = [p for p in _ranked(study) if p in params]
        numeric = [p for p in params if _is_numeric(study, p)]
        return list(dict.fromkeys(ranked + numeric + params))[:2]

    def contour() -> Any:
        return _visible(pv.plot_contour(study, params=pair(), **kw))

    def importances() -> Any:
        needs(MIN_TRIALS_FOR_IMPORTANCE, "a fair importance estimate")
        return pv.plot_param_importances(study, **kw)

    return [
        Figure(
            f"{n}-parallel_coordinate",
            f"{n}: parallel coordinates (colour: {name}, darker is higher)",
            parallel,
            lambda: mv.plot_parallel_coordinate(study, **kw),
        ),
        Figure(
            f"{n}-slice",
            f"{n}: {name} against each parameter (log axes where the search was log)",
            slice_,
            lambda: mv.plot_slice(study, **kw),
        ),
        Figure(
            f"{n}-contour",
            f"{n}: {name} over two parameters (the two most important, from {MIN_TRIALS_FOR_IMPORTANCE} complete trials on)",
            contour,
            lambda: mv.plot_contour(study, params=pair(), **kw),
        ),
        Figure(
            f"{n}-param_importances",
            f"{n}: parameter importances (fANOVA over {len(complete)} complete trials)",
            importances,
            lambda: mv.plot_param_importances(study, **kw),
            note=directions_note(study),
        ),
    ]


def _is_numeric(study: Any, param: str) -> bool:
    for t in _complete(study):
        if param in t.distributions:
            return type(t.distributions[param]).__name__ in ("FloatDistribution", "IntDistribution")
    return False


def _ranked(study: Any) -> list[str]:
    """Parameters by importance when there are enough trials to say, else none."""
    import optuna

    if len(_complete(study)) < MIN_TRIALS_FOR_IMPORTANCE:
        return []
    try:
        target = _kw(study).get("target")
        return list(optuna.importance.get_param_importances(study, target=target))
    except (RuntimeError, ValueError):
        return []


def directions_note(study: Any) -> str:
    """Which way each parameter moves the objective, over the complete trials: the rank correlation
    of a numeric parameter with the objective, the best choice (by mean) of a categorical one."""
    import numpy as np

    complete = [t for t in _complete(study) if t.values]
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return (
            f"Importances are drawn from {MIN_TRIALS_FOR_IMPORTANCE} complete trials on; this study has "
            f"{len(complete)}, too few to tell a parameter's effect from noise."
        )
    name = objective_names(study)[0]
    maximize = study.directions[0].name == "MAXIMIZE"
    lines = []
    for p in sorted({p for t in complete for p in t.params}):
        pts = [(t.params[p], t.values[0]) for t in complete if p in t.params]
        if len(pts) < 3:
            continue
        xs, ys = [x for x, _ in pts], np.array([y for _, y in pts], dtype=float)
        if _is_numeric(study, p):
            rx, ry = np.argsort(np.argsort(xs)), np.argsort(np.argsort(ys))
            if np.std(rx) == 0 or np.std(ry) == 0:
                continue
            rho = float(np.corrcoef(rx, ry)[0, 1])
            way = "higher" if rho > 0 else "lower"
            lines.append(
                f"{p}: higher values go with {way} {name} (rank correlation {rho:+.2f}, {len(pts)} trials)"
            )
        else:
            means = {str(c): float(np.mean([y for x, y in pts if x == c])) for c in set(xs)}
            if len(means) < 2:
                continue
            ordered = sorted(means.items(), key=lambda kv: kv[1], reverse=maximize)
            lines.append(
                f"{p}: {ordered[0][0]} best on average ({name} {ordered[0][1]:.4f}; "
                + ", ".join(f"{c} {v:.4f}" for c, v in ordered[1:])
                + ")"
            )
    return "Direction of each effect: " + ("; ".join(lines) if lines else "none measurable") + "."


# ---------------------------------------------------------------- learning curves from run records


def curves(rec: run_record.RunRecord) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(x, value)]} from a run record's metrics.csv, training only: `train/loss` per
    optimizer step; validation metrics per epoch, or per validation (0, 1, 2, ... as the pruner
    counts them) when the run validated several times an epoch. The extra validation and test passes
    that `train()` runs on the best checkpoint after fitting are left out."""
    path = rec.path / "metrics.csv"
    if not path.is_file():
        return {}
    trained = (rec.metrics or {}).get("epochs_trained")
    out: dict[str, list[tuple[int, float]]] = {}
    epochs: dict[str, list[int]] = {}
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
                    epochs.setdefault(key, []).append(epoch)
    for key, seen in epochs.items():
        if len(set(seen)) < len(seen):  # several validations an epoch: number them
            out[key] = [(i, v) for i, (_, v) in enumerate(out[key])]
    return out


def _monitor(rec: run_record.RunRecord) -> str:
    return str((rec.config.get("trainer") or {}).get("monitor", "val/loss"))


def run_figures(records: list[run_record.RunRecord], who: dict[str, Who]) -> list[Figure]:
    def series(which: str) -> list[tuple[Who, list[tuple[int, float]]]]:
        out = []
        for rec in records:
            points = curves(rec).get(_monitor(rec) if which == "val" else "train/loss")
            if points:
                out.append((who[rec.exp_id], points))
        return out

    monitors = sorted({_monitor(r) for r in records})
    y_val = monitors[0] if len(monitors) == 1 else "monitored validation metric"
    several = any(report_unit_of(rec) == "validation" for rec in records)
    x_val = "validation (0 = the first)" if several else "epoch"

    def plotly(which: str, x: str, y: str) -> Callable[[], Any]:
        def draw() -> Any:
            import plotly.graph_objects as go

            s = series(which)
            if not s:
                raise Skip("no run record has a metrics.csv with these values")
            fig = go.Figure()
            for w, points in s:
                fig.add_trace(
                    go.Scatter(
                        x=[p[0] for p in points],
                        y=[p[1] for p in points],
                        mode="lines+markers" if which == "val" else "lines",
                        name=w.label,
                        line={"color": w.colour},
                    )
                )
            fig.update_layout(xaxis_title=x, yaxis_title=y, height=420)
            return fig

        return draw

    def mpl(which: str, x: str, y: str) -> Callable[[], Any]:
        def draw() -> Any:
            import matplotlib.pyplot as plt

            s = series(which)
            if not s:
                raise Skip("no run record has a metrics.csv with these values")
            _, ax = plt.subplots(figsize=(8, 4.5))
            for w, points in s:
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    color=w.colour,
                    label=w.label,
                    marker="o" if which == "val" else None,
                    markersize=3,
                )
            ax.set_xlabel(x)
            ax.set_ylabel(y)
            if len(s) <= 16:
                ax.legend(fontsize=7)
            return ax

        return draw

    return [
        Figure(
            "learning_curves-val",
            f"Learning curves: {y_val} at each {x_val.split(' ')[0]} of every run",
            plotly("val", x_val, y_val),
            mpl("val", x_val, y_val),
        ),
        Figure(
            "learning_curves-train_loss",
            "Learning curves: training loss at each optimizer step",
            plotly("loss", "optimizer step", "train/loss"),
            mpl("loss", "optimizer step", "train/loss"),
        ),
    ]


def report_unit_of(rec: run_record.RunRecord) -> str:
    vci = (rec.config.get("trainer") or {}).get("val_check_interval")
    return "epoch" if vci in (None, 1.0) else "validation"
