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


def test_a_test_metric_as_objective_is_refused_with_the_reason(tmp_path: Path) -> None:
    import pytest
    import yaml

    from experiments.core.errors import ConfigError
    from tests.conftest import tiny_config

    spec = {
        "base": tiny_config(),
        "metric": {"name": "test/f1", "goal": "maximize"},
        "parameters": {"seed": 1},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(
        ConfigError, match=r"metric.name: test/f1 would choose the model on the test split.*use val/f1"
    ):
        load_sweep(tmp_path / "s.yaml")


def test_a_study_refuses_a_changed_search_unless_told_and_records_the_change(tmp_path: Path) -> None:
    import optuna
    import pytest
    import yaml

    from experiments.core.errors import EcomlabError
    from experiments.results import optuna_private
    from experiments.sweep.study import FINGERPRINT_ATTR, check_unchanged, digest, fingerprint, open_study
    from tests.conftest import tiny_config

    def sweep(low: float) -> Path:
        spec = {
            "name": "s",
            "base": tiny_config(),
            "metric": {"name": "val/f1", "goal": "maximize"},
            "parameters": {"optim.lr": {"type": "float", "low": low, "high": 1e-2, "log": True}},
        }
        (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
        return tmp_path / "s.yaml"

    first = load_sweep(sweep(1e-4))
    study = open_study(first, tmp_path / "runs", sampling=False)[0]
    check_unchanged(study, first)  # a new study keeps its fingerprint
    assert study.user_attrs[FINGERPRINT_ATTR] == fingerprint(first)
    check_unchanged(study, load_sweep(sweep(1e-4)))  # the same search: fine
    changed = load_sweep(sweep(1e-5))
    with pytest.raises(EcomlabError) as err:
        check_unchanged(study, changed)
    text = str(err.value)
    assert "parameters.optim.lr was float log [0.0001, 0.01], now float log [1e-05, 0.01]" in text
    assert f"--new-study to start s-{digest(fingerprint(changed))}" in text and "--allow-changed" in text
    check_unchanged(study, changed, allow_changed=True)
    reloaded = optuna.load_study(study_name="s", storage=optuna_private.study_storage(study))
    assert reloaded.user_attrs["changes"][0]["changes"] == [
        "parameters.optim.lr was float log [0.0001, 0.01], now float log [1e-05, 0.01]"
    ]
    check_unchanged(reloaded, changed)  # the recorded change is the study's search now
