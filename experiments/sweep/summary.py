"""What a study says once it has trials: the trials table, the best trial or Pareto front against
the baseline, the best trial's config for `ecomlab run`, and the study-level W&B run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.core.errors import EcomlabError
from experiments.results import run_record
from experiments.results.display import fmt_value
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
        recorded = trial.user_attrs.get("metrics") or {}
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
                "number": t.number,
                "state": t.state.name,
                "params": t.params,
                "values": t.values,
                "duration_s": duration,
                "experiment_id": t.user_attrs.get("experiment_id"),
                "user_attrs": t.user_attrs,
                "system_attrs": t.system_attrs,
            }
        )
    return rows


def show_study(study: Any, console: Console, baseline: bool = True) -> None:
    from rich.table import Table

    metrics = study.user_attrs.get("metrics") or [{"name": "value", "goal": "maximize"}]
    rows = trial_rows(study)
    names = sorted({k for r in rows for k in r["params"]})
    table = Table(title=f"Study {study.study_name}: {len(rows)} trial(s)")
    for col in ("#", "state", *names, *(m["name"] for m in metrics), "time", "experiment id"):
        table.add_column(col, overflow="fold")
    for r in rows:
        vals = r["values"] or [None] * len(metrics)
        note = r["user_attrs"].get("error") if r["state"] == "FAIL" else None
        state = r["state"] + (f" ({note[:40]})" if note else "")
        if "failed_trial" in r["system_attrs"]:
            state += f" retry of {r['system_attrs']['failed_trial']}"
        table.add_row(
            str(r["number"]),
            state,
            *(fmt_value(r["params"].get(n)) for n in names),
            *(fmt_value(v) for v in vals),
            fmt_value(r["duration_s"], 1),
            r["experiment_id"] or "-",
        )
    (console if console.is_terminal else Console(width=200, file=console.file)).print(table)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    if not complete:
        console.print("No completed trial yet.")
        return
    if len(metrics) == 1:
        b = study.best_trial
        console.print(
            f"Best: trial {b.number}, {metrics[0]['name']} = {b.value:.4f}, "
            f"experiment {b.user_attrs.get('experiment_id')}: {_fmt_params(b.params)}"
        )
        for line in baseline_lines(study, b) if baseline else []:
            console.print(line)
    else:
        front = []
        for t in study.best_trials:
            vals = ", ".join(f"{m['name']}={v:.4g}" for m, v in zip(metrics, t.values))
            front.append(f"trial {t.number} ({vals}, experiment {t.user_attrs.get('experiment_id')})")
        console.print("Pareto front: " + "; ".join(front))
        for line in baseline_lines(study, None) if baseline else []:
            console.print(line)
    console.print(
        f"Next: `ecomlab report {study.study_name} --out {study.study_name}.html`, "
        f"`ecomlab study best {study.study_name} --export best.yaml`, "
        f"`ecomlab dashboard {study.study_name}`, `ecomlab reproduce <experiment id>`."
    )


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in params.items())


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
