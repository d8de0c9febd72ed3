"""Bad input never ends in a traceback: every command, on bad ids, missing or damaged files, unknown
studies and malformed values, says what is wrong in one paragraph and exits 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[2] / "fixtures"

# (command line, words the error must contain); {tmp} is the test's folder, whose runs/ holds a good
# record (446bd1c22b37), one with a broken config.yaml and one with a broken metrics.json.
CASES = [
    ("run {tmp}/missing.yaml", "file not found"),
    ("run {tmp}/broken.yaml", "not valid YAML"),
    ("run --set optim.lr=-1", "optim.lr: Input should be greater than 0"),
    ("run --set optim.lrr=1", "optim.lrr: unknown key"),
    ("run --set optim.lr", "expected key=value"),
    ("run --set data.dataset=amazon", "data"),
    ("reproduce ../etc", "not a valid experiment id"),
    ("reproduce ffffffffffff", "No run record ffffffffffff"),
    ("reproduce aaaaaaaaaaaa", "aaaaaaaaaaaa is damaged"),
    ("reproduce bbbbbbbbbbbb", "metrics.json cannot be read"),
    ("compare ffffffffffff", "neither a run record"),
    ("compare 446bd1c22b37 --filter nonsense", "expected METRIC OP VALUE"),
    ("compare 446bd1c22b37 --metrics val/zzz", "matches no metric"),
    ("compare 446bd1c22b37 --sort val/zzz", "no column 'val/zzz'"),
    ("report shop --out {tmp}/r.html", "neither a run record"),
    ("anomaly {tmp}/missing.csv", "file not found"),
    ("anomaly {tmp}/reviews.csv --column body", "has no column 'body'"),
    ("anomaly {tmp}/reviews.csv --model aaaaaaaaaaaa", "is damaged"),
    ("fetch nosuchasset", "Unknown asset 'nosuchasset'"),
    ("sweep {tmp}/missing.yaml", "file not found"),
    ("sweep {tmp}/broken.yaml", "not valid YAML"),
    ("sweep {tmp}/bad_sweep.yaml --dry-run", "parameters.optim.lr"),
    ("study show shop", "No study named 'shop'"),
    ("study best shop", "No study named 'shop'"),
    ("dashboard shop", "No study named 'shop'"),
    ("export ffffffffffff", "No run record ffffffffffff"),
    ("export shop", "No study named 'shop'"),
    ("export 446bd1c22b37 --out {tmp}/reviews.csv", "is not an earlier export"),
    ("serve {tmp}/missing", "is not an ecomlab export"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bad-input")
    runs = tmp / "runs"
    shutil.copytree(FIXTURES / "records" / "446bd1c22b37", runs / "446bd1c22b37")
    (runs / "aaaaaaaaaaaa").mkdir()
    (runs / "aaaaaaaaaaaa" / "config.yaml").write_text("x: [\n")
    (runs / "aaaaaaaaaaaa" / "metrics.json").write_text("{}")
    shutil.copytree(runs / "446bd1c22b37", runs / "bbbbbbbbbbbb")
    (runs / "bbbbbbbbbbbb" / "metrics.json").write_text("{not json")
    (tmp / "broken.yaml").write_text("a: [1,\n")
    (tmp / "reviews.csv").write_text("text,label\ngreat shoes,positive\nbad zip,negative\nok,positive\n")
    (tmp / "bad_sweep.yaml").write_text(
        "base: ../configs/text_file.yaml\nmetric: {name: val/f1}\n"
        "parameters:\n  optim.lr: {distribution: log_uniform_values, min: -1, max: 1}\n"
    )
    return tmp


@pytest.mark.parametrize(("command", "words"), CASES, ids=[c for c, _ in CASES])
def test_bad_input_is_one_paragraph_and_exit_2(
    command: str, words: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOMLAB_RUNS", str(folder / "runs"))
    monkeypatch.setenv("COLUMNS", "200")  # one paragraph on one line where it is short
    args = command.format(tmp=folder).split()
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], err[-2000:])
    assert "Traceback" not in err and err.startswith("error: "), err
    assert words in " ".join(err.split()), err
    assert "\n\n" not in err.strip(), err  # one paragraph


def test_runs_reports_damaged_records_and_lists_the_rest(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOMLAB_RUNS", str(folder / "runs"))
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "runs"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "COLUMNS": "250"},
    )
    assert proc.returncode == 0 and "446bd1c22b37" in proc.stdout
    assert "aaaaaaaaaaaa is damaged" in " ".join(proc.stderr.split())
    assert "bbbbbbbbbbbb is damaged" in " ".join(proc.stderr.split())
