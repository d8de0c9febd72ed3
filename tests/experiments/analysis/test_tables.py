"""The text tables (`runs`, `compare`, `study show`) at 120 columns: no line longer, no value cut or
wrapped inside a word, the same values and states as the report, and copyable `Next:` commands."""

from __future__ import annotations

from pathlib import Path

import optuna
from typer.testing import CliRunner

from experiments.cli import app
from experiments.results.display import fmt_param
from tests.experiments.analysis.conftest import add_pruned_trial

runner = CliRunner()


def shown(*args: str) -> list[str]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 120, result.output
    return lines


def complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=[optuna.trial.TrialState.COMPLETE])


def test_runs_shows_what_differs_and_keeps_the_learning_rates_digits(study) -> None:
    out = "\n".join(shown("runs"))
    for t in complete(study):
        row = next(line for line in out.splitlines() if t.user_attrs["experiment_id"] in line)
        assert fmt_param(t.params["optim.lr"]) in row  # e.g. 0.0006712, not 0.0007
        assert "completed" in row and " s " in row + " "  # whole status; time with its unit
    assert "Every run: task text_classification" in out  # what they share is said once
    assert "lora r" not in out


def test_compare_all_turns_on_its_side_when_the_runs_do_not_fit_across(study) -> None:
    lines = shown("compare", "tiny", "--all")
    text = "\n".join(lines)
    for t in complete(study):
        assert t.user_attrs["experiment_id"] in text
    rows = [line for line in lines if line.startswith("│")]
    names = [line.split("│")[1].strip() for line in rows]
    assert {"val/f1", "test/f1", "lr", "time"} <= set(names)  # one row per column, names whole


def test_study_show_agrees_with_the_report_on_pruned_trials_and_says_its_units(study) -> None:
    pruned = add_pruned_trial(study)
    lines = shown("study", "show", "tiny")
    (row,) = [line for line in lines if line.startswith(f"│ {pruned.number} ")]
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[1] == "PRUNED after 1 epoch (0.3000)" and cells[2] == "-"  # as the report's runs table
    for t in complete(study):
        (done,) = [line for line in lines if line.startswith(f"│ {t.number} ")]
        assert f"{t.value:.4f}" in done and " s " in done  # time with its unit
    at = lines.index("Next:")
    commands = lines[at + 1 : at + 5]
    assert commands[0] == "  ecomlab report tiny --out tiny.html" and all(
        c.startswith("  ecomlab ") for c in commands
    )


def test_a_table_too_wide_for_the_terminal_says_what_it_left_out(study, tmp_path: Path) -> None:
    from rich.console import Console

    from experiments.results.display import fitted_table

    rows = [{"id": f"{i:012d}", **{f"model.knob_{k}": 0.000123456 * k for k in range(30)}} for i in range(3)]
    columns = ["id", *rows[0].keys() - {"id"}]
    table, left_out = fitted_table(Console(width=120), "t", sorted(columns), {}, rows)
    console = Console(width=120, record=True)
    console.print(table)
    assert left_out and max(len(line) for line in console.export_text().splitlines()) <= 120
