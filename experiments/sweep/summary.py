"""What a study says once it has trials: the trials table, the best trial or Pareto front against
the baseline, the best trial's config for `ecomlab run`, and the study-level W&B run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.core.errors import EcomlabError
from experiments.results import run_record
from experiments.results.display import fitted_table, fmt_param, print_fitted, state_text
from experiments.results.trials import (
    DEFAULT_COST,
    FINAL_TEST_ATTR,
    config_path,
    recommendation_lines,
    test_metrics,
)
from experiments.sweep.file import Sweep


def baseline_lines(study: Any, trial: Any | None) -> list[str]:
    """ "val/f1 0.89 vs baseline 0.87 (...): +0.02, better" for the objectives and their test twins."""
    from experiments.run.baseline import versus

    metrics = study.user_attrs.get("metrics") or []
    lines = []
    for base in filter(None, (study.user_attrs.get("baseline"), study.user_attrs.get("zero_shot"))):
        if trial is None:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in base["metrics"].items())
            lines.append(f"Baseline {base['name']}: {shown}")
            continue
        recorded = {**(trial.user_attrs.get("metrics") or {}), **test_metrics(study, trial)}
        for i, m in enumerate(metrics):
            names = [m["name"]] + (
                [m["name"].replace("val/", "test/", 1)] if m["name"].startswith("val/") else []
            )
            for name in names:
                value = trial.values[i] if name == m["name"] else recorded.get(name)
                line = versus(value, base, name, m["goal"])
                if line:
                    lines.append(f"best trial {trial.number}: {line}")
        if base.get("note"):
            lines.append(f"(baseline {base['note']})")
    return lines


def log_study(study: Any, sw: Sweep, folder: Path, console: Console) -> None:
    """The study-level W&B run; a tracking failure here never loses the finished study."""
    from experiments.results import tracking

    base = sw.base_experiment
    try:
        run_id = tracking.log_study(study, base.tracking, folder, [f"study:{sw.name}"])
    except Exception as exc:  # noqa: BLE001 - every trial is already stored; report and go on
        console.print(f"[yellow]The study-level W&B run was not written:[/] {type(exc).__name__}: {exc}")
        return
    if run_id:
        console.print(
            f"Study-level W&B run {run_id} ({tracking.resolve_mode(base.tracking)}) in {folder}/wandb"
        )


def test_the_best(study: Any, runs_root: Path, console: Console) -> None:
    """Test the best trial (every Pareto trial with several objectives) once, from its saved
    weights, and keep the result on the study; a trial whose record is on another machine is said
    and skipped. A failure here never loses the finished study."""
    from experiments.run.final_test import test_record, testable

    try:
        chosen = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    except ValueError:  # no completed (feasible) trial
        return
    kept = dict(study.user_attrs.get(FINAL_TEST_ATTR) or {})
    for t in chosen:
        exp_id = t.user_attrs.get("experiment_id")
        folder = runs_root / str(exp_id)
        if str(t.number) in kept or not exp_id:
            continue
        if not testable(folder):  # on another machine, or a half-written copy of a killed attempt
            from experiments.results.record_store import where_written

            console.print(
                f"[yellow]trial {t.number}: its weights are at {where_written(t)}; test it there with "
                f"`ecomlab sweep` on that machine, or fetch the record with its weights[/]"
            )
            continue
        try:
            kept[str(t.number)] = test_record(folder, console, f" by study {study.study_name}")
        except Exception as exc:  # noqa: BLE001 - the study is finished; say what was not tested
            console.print(f"[yellow]trial {t.number} was not tested:[/] {type(exc).__name__}: {exc}")
    if kept:
        study.set_user_attr(FINAL_TEST_ATTR, kept)


def note(study: Any) -> str:
    """The study's summary in Markdown, as optuna-dashboard's note shows it beside the plots: the best
    trial (or the Pareto front), its experiment id, val and test against the baseline, and the
    commands that reproduce and export it."""
    metrics = study.user_attrs.get("metrics") or []
    trials = study.get_trials(deepcopy=False)
    states = ", ".join(
        f"{n} {s.lower()}"
        for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
        if (n := sum(t.state.name == s for t in trials))
    )
    lines = [f"## {study.study_name}", "", f"Trials: {states or 'none yet'}.", ""]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        return "\n".join(lines + ["No completed trial yet."]) + "\n"
    if len(metrics) > 1:
        lines.append("Pareto front:")
        for t in study.best_trials:
            values = ", ".join(f"{m['name']} {v:.4f}" for m, v in zip(metrics, t.values))
            lines.append(f"- trial {t.number}, experiment `{t.user_attrs.get('experiment_id')}`: {values}")
        lines += ["", f"`ecomlab export {study.study_name} --pareto`"]
        return "\n".join(lines) + "\n"
    best = study.best_trial
    exp_id = best.user_attrs.get("experiment_id")
    name = metrics[0]["name"] if metrics else "value"
    lines += [f"**Best: trial {best.number}**, experiment `{exp_id}`, {name} {best.value:.4f}", ""]
    lines += [f"- {line.split(': ', 1)[1]}" for line in baseline_lines(study, best)]
    lines += [
        "",
        f"Reproduce: `ecomlab reproduce {exp_id}`  ",
        f"Export: `ecomlab export {study.study_name}`",
    ]
    return "\n".join(lines) + "\n"


def save_note(study: Any) -> None:
    """Keep optuna-dashboard's note of the study current (a failure is never a reason to stop)."""
    import contextlib

    with contextlib.suppress(Exception):
        from optuna_dashboard import save_note as save

        save(study, note(study))


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        rows.append(
            {
                "constraints": t.constraints,
                "number": t.number,
                "state": t.state.name,
                "params": t.params,
                "values": t.values,
                "duration_s": duration,
                "experiment_id": t.user_attrs.get("experiment_id"),
                "intermediate_values": t.intermediate_values,
                "user_attrs": t.user_attrs,
                "system_attrs": t.system_attrs,
            }
        )
    return rows


def show_study(study: Any, console: Console, baseline: bool = True) -> None:

    metrics = study.user_attrs.get("metrics") or [{"name": "value", "goal": "maximize"}]
    rows = trial_rows(study)
    by_path = [_by_path(r["params"]) for r in rows]
    names = sorted({k for params in by_path for k in params})
    unit = study.user_attrs.get("report_unit", "epoch")
    table_rows = []
    for r, params in zip(rows, by_path):
        vals = r["values"] if r["state"] == "COMPLETE" and r["values"] else [None] * len(metrics)
        table_rows.append(
            {
                "#": r["number"],
                "state": state_text(r, unit),
                **{m["name"]: v for m, v in zip(metrics, vals)},
                "duration_s": r["duration_s"],
                "experiment id": r["experiment_id"],
                **{f"param:{n}": params.get(n) for n in names},
            }
        )
    columns = ["#", "state", *(m["name"] for m in metrics), "duration_s", "experiment id"]
    headers = {"duration_s": "time", **{f"param:{n}": n for n in names}}
    table, left_out = fitted_table(
        console,
        f"Study {study.study_name}: {len(rows)} trial(s)",
        columns + [f"param:{n}" for n in names],
        headers,
        table_rows,
        fixed=len(columns),
    )
    print_fitted(console, table)
    if left_out:
        console.print(
            f"Parameters left out (wider than the terminal): {', '.join(headers[c] for c in left_out)}; "
            f"`ecomlab compare {study.study_name}` shows them.",
            highlight=False,
            soft_wrap=True,
        )
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    if not complete:
        console.print("No completed trial yet.")
        return
    if len(metrics) == 1:
        try:
            b = study.best_trial
        except ValueError:  # every completed trial breaks a constraint
            console.print("No completed trial meets the constraints yet.")
            return
        console.print(
            f"Best: trial {b.number}, {metrics[0]['name']} = {b.value:.4f}, "
            f"experiment {b.user_attrs.get('experiment_id')}: {_fmt_params(b.params)}"
        )
        for line in baseline_lines(study, b) if baseline else []:
            console.print(line)
        if any(DEFAULT_COST in (t.user_attrs.get("metrics") or {}) for t in study.get_trials(deepcopy=False)):
            for line in recommendation_lines(study):  # a command whole on its line, the rest wrapped
                console.print(line, highlight=False, soft_wrap=line.startswith("Export it:"))
    else:
        front = []
        for t in study.best_trials:
            vals = ", ".join(f"{m['name']}={v:.4g}" for m, v in zip(metrics, t.values))
            front.append(f"trial {t.number} ({vals}, experiment {t.user_attrs.get('experiment_id')})")
        console.print("Pareto front: " + "; ".join(front))
        for line in baseline_lines(study, None) if baseline else []:
            console.print(line)
    next_steps(
        console,
        f"ecomlab report {study.study_name} --out {study.study_name}.html",
        f"ecomlab study best {study.study_name} --export best.yaml",
        f"ecomlab dashboard {study.study_name}",
        "ecomlab reproduce <experiment id>",
    )


def next_steps(console: Console, *commands: str) -> None:
    """The commands to run next, one a line and never wrapped, so each can be copied whole."""
    console.print("Next:")
    for command in commands:
        console.print(f"  {command}", highlight=False, soft_wrap=True, markup=False)


def _by_path(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters by config path: a branch's `optim.lr (minilm)` is the `optim.lr` column,
    blank in the trials that took another branch."""
    return {config_path(name): v for name, v in params.items()}


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_param(v)}" for k, v in params.items())


def export_best(study: Any, runs_root: Path, out: Path) -> str:
    """Write the best trial's resolved config (from its run record); return its experiment id."""
    metrics = study.user_attrs.get("metrics") or []
    if len(metrics) > 1:
        raise EcomlabError(
            f"Study {study.study_name} is multi-objective: pick a trial from the Pareto front "
            "(`ecomlab study show`) and use its run record's config.yaml."
        )
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        raise EcomlabError(f"Study {study.study_name} has no completed trial yet.")
    best = study.best_trial
    exp_id = best.user_attrs.get("experiment_id")
    rec = run_record.read(runs_root, exp_id)
    run_record.write_yaml(
        out,
        rec.config,
        header=f"# ecomlab run {out}\n# best trial {best.number} of study "
        f"{study.study_name}: {metrics[0]['name']} = {best.value:.4f}, experiment {exp_id}",
    )
    return exp_id
