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


def test_pinned_values_are_base_config_and_only_a_search_over_devices_is_refused(tmp_path: Path) -> None:
    import pytest
    import yaml

    from experiments.core.errors import EcomlabError
    from experiments.sweep.monitor import ranks_per_trial
    from experiments.sweep.study import base_experiment_id
    from tests.conftest import tiny_config

    def sweep(name: str, devices: object) -> Path:
        spec = {
            "name": name,
            "base": tiny_config(),
            "metric": {"name": "val/f1", "goal": "maximize"},
            "pruner": {"type": "none"},
            "parameters": {
                "optim.lr": {"values": [0.001, 0.01]},
                "trainer.accelerator": "cpu",
                "trainer.devices": devices,
            },
        }
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(spec))
        return tmp_path / f"{name}.yaml"

    pinned = load_sweep(sweep("pinned", 2))
    assert pinned.base["trainer"]["devices"] == 2 and ranks_per_trial(pinned) == 2
    in_base = tiny_config(trainer={"accelerator": "cpu", "devices": 2})
    (tmp_path / "base.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "pinned",
                "base": in_base,
                "metric": {"name": "val/f1", "goal": "maximize"},
                "pruner": {"type": "none"},
                "parameters": {"optim.lr": {"values": [0.001, 0.01]}},
            }
        )
    )
    assert base_experiment_id(pinned) == base_experiment_id(load_sweep(tmp_path / "base.yaml"))
    searched = load_sweep(sweep("searched", {"values": [1, 2]}))
    searched.base["trainer"]["devices"] = 2
    with pytest.raises(EcomlabError, match=r"parameters.trainer.devices: .* put the value in `base`"):
        ranks_per_trial(searched)
