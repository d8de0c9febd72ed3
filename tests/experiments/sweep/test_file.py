"""The sweep file is one typed model: its key reference in sweeps/README.md is generated from it, and
`--dry-run` lists its resolved settings from it."""

from __future__ import annotations

import re
from pathlib import Path

from experiments.sweep.file import SweepFile, key_reference, load_sweep, markdown_table, settings

ROOT = Path(__file__).parents[3]


def test_the_readme_key_reference_is_the_one_generated_from_the_model() -> None:
    text = (ROOT / "sweeps" / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- sweep-keys:start -->\n(.*?)<!-- sweep-keys:end -->", text, re.S)
    assert found, "sweeps/README.md has no generated key reference"
    assert found.group(1) == markdown_table(key_reference()), (
        "sweeps/README.md's key reference is out of date: paste `ecomlab config --sweep --markdown` between "
        "its sweep-keys markers"
    )


def test_every_key_of_the_model_is_in_the_reference_with_a_meaning() -> None:
    keys = {k for k, _, _ in key_reference()}
    assert set(SweepFile.model_fields) <= keys
    assert {"pruner.min_resource", "faults.max_retries", "parameters.<dot.path>.log"} <= keys
    assert all(meaning for _, _, meaning in key_reference())


def test_dry_run_settings_are_the_resolved_model(tmp_path: Path) -> None:
    """W&B's keys are resolved into the native ones, so the listing shows what will run."""
    (tmp_path / "s.yaml").write_text(
        "method: random\nrun_cap: 3\nmetric: {name: val/f1, goal: maximize}\n"
        "base: {data: {dataset: text_file, path: x.csv, labels: [a, b]}, model: {backbone: tiny}}\n"
        "parameters: {optim.lr: {values: [0.001, 0.01]}}\n"
    )
    (tmp_path / "x.csv").write_text("text,label\nfine,a\n")
    shown = dict(settings(load_sweep(tmp_path / "s.yaml")))
    assert shown["sampler.type"] == "random" and shown["budget.n_trials"] == 3
    assert shown["pruner.type"] == "hyperband" and shown["metrics"] == "val/f1 (maximize)"
    assert "method" not in shown and "run_cap" not in shown
