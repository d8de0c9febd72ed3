"""What a study's trials say, read the same way by every command that shows them (`study show`,
`study recommend`, `compare`, the report): a trial's test metrics (its own, or the end-of-sweep
test's), whether it meets the study's constraints, and the cheapest trial within a tolerance of the
best."""

from __future__ import annotations

from typing import Any

from experiments.core.errors import EcomlabError
from experiments.results.display import fmt_value

FINAL_TEST_ATTR = "final_test"  # {trial number: its test metrics}, computed once at the end


def config_path(optuna_name: str) -> str:
    """The config path an Optuna parameter name sets: a conditional branch's `optim.lr (minilm)`
    (experiments/sweep/space.py names them so) sets `optim.lr`; a path has no spaces."""
    return optuna_name.split(" (", 1)[0]


def branched(name: str) -> bool:
    """Whether an Optuna parameter name is a conditional branch's (`optim.lr (minilm)`)."""
    return config_path(name) != name


def test_metrics(study: Any, trial: Any) -> dict[str, Any]:
    """A trial's test metrics: its own (tested every trial) or those of the end-of-sweep test."""
    own = {k: v for k, v in (trial.user_attrs.get("metrics") or {}).items() if k.startswith("test/")}
    return own or (study.user_attrs.get(FINAL_TEST_ATTR) or {}).get(str(trial.number), {})


DEFAULT_COST = "model/latency_ms_b32"


def feasible(t: Any) -> bool:
    """A trial that meets every constraint of its study (Optuna's rule: each value <= 0)."""
    return all(v <= 0 for v in (getattr(t, "constraints", None) or {}).values())


def recommend(study: Any, within: float, by: str = DEFAULT_COST) -> tuple[Any, Any | None]:
    """(the best trial, the trial with the least `by` whose objective is within `within` of the
    best's), among the complete feasible trials of a single-objective study; the second is None when
    no trial records `by`."""
    metrics = study.user_attrs.get("metrics") or [{"name": "value", "goal": "maximize"}]
    if len(metrics) > 1:
        raise EcomlabError(
            f"Study {study.study_name} is multi-objective: its Pareto front already trades the objectives off "
            f"(`ecomlab study show {study.study_name}`, `ecomlab export {study.study_name} --pareto`)."
        )
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and feasible(t)]
    if not done:
        raise EcomlabError(f"Study {study.study_name} has no completed trial that meets its constraints yet.")
    best = study.best_trial
    close = [t for t in done if abs(t.value - best.value) <= within + 1e-12]
    costed = [t for t in close if isinstance((t.user_attrs.get("metrics") or {}).get(by), (int, float))]
    cheapest = min(costed, key=lambda t: (t.user_attrs["metrics"][by], -t.number)) if costed else None
    return best, cheapest


def recommendation_lines(study: Any, within: float = 0.01, by: str = DEFAULT_COST) -> list[str]:
    """What `ecomlab study recommend` prints and the end of a sweep says."""
    best, cheapest = recommend(study, within, by)
    name = (study.user_attrs.get("metrics") or [{"name": "value"}])[0]["name"]

    def cost(t: Any) -> str:
        v = (t.user_attrs.get("metrics") or {}).get(by)
        return f"{by} {fmt_value(v)}" if v is not None else f"no {by}"

    lines = [
        f"Best: trial {best.number}, experiment {best.user_attrs.get('experiment_id')}: {name} "
        f"{best.value:.4f}, {cost(best)}"
    ]
    if cheapest is None:
        return [*lines, f"No trial within {within:g} of the best records {by}."]
    if cheapest.number == best.number:
        lines.append(f"The best is also the cheapest by {by} within {within:g} of it.")
    else:
        b, c = best.user_attrs["metrics"].get(by), cheapest.user_attrs["metrics"][by]
        ratio = f" ({b / c:.1f}x less)" if isinstance(b, (int, float)) and c else ""
        lines.append(
            f"Cheapest within {within:g} of the best: trial {cheapest.number}, experiment "
            f"{cheapest.user_attrs.get('experiment_id')}: {name} {cheapest.value:.4f} "
            f"({cheapest.value - best.value:+.4f}), {cost(cheapest)}{ratio}"
        )
    lines.append(f"Export it: ecomlab export {study.study_name} --trial {cheapest.number}")
    return lines
