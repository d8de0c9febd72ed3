"""Config validation: every problem at once, with its key path; --set is checked the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.config import apply_overrides, experiment_id, load_config, validate
from experiments.core.errors import ConfigError
from tests.conftest import tiny_config


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        validate(raw)
    return exc.value.problems


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    raw = tiny_config(optim={"lr": -1, "warmup": 2}, peft={"r": -4}, trainer={"max_epochs": 0})
    raw["data"]["max_lenght"] = 64
    found = problems(raw)
    assert any(p.startswith("optim.lr: ") and "greater than 0" in p and "(got -1)" in p for p in found), found
    assert any(p.startswith("optim.warmup: ") for p in found), found
    assert any(p.startswith("peft.r: ") and "(got -4)" in p for p in found), found
    assert any(p.startswith("trainer.max_epochs: ") for p in found), found
    assert "data.max_lenght: unknown key" in found, found
    assert len(found) == 5


def test_unknown_group_and_unknown_dataset() -> None:
    raw = tiny_config()
    raw["optimizer"] = {"lr": 1}
    assert "optimizer: unknown key" in problems(raw)
    raw = tiny_config()
    raw["data"]["dataset"] = "amazon"
    (msg,) = problems(raw)
    assert msg.startswith("data") and "dangdang_reviews" in msg


def test_dataset_specific_keys_are_checked_against_that_dataset() -> None:
    found = problems({"data": {"dataset": "womens_clothing_reviews", "target": "colour", "path": "x.csv"}})
    assert any(p.startswith("data.target: ") for p in found), found
    assert "data.path: unknown key" in found


def test_required_key_missing() -> None:
    assert "data.path: required key is missing" in problems({"data": {"dataset": "text_file"}})


def test_monitor_must_be_a_metric_the_task_logs() -> None:
    (msg,) = problems(tiny_config(trainer={"monitor": "val/auc"}))
    assert "trainer.monitor" in msg and "val/f1" in msg


def test_set_overrides_are_type_checked(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(tiny_config()))
    cfg = load_config(path, ["optim.lr=1e-4", "peft.r=8", "peft.target_modules=[query]"])
    assert cfg.optim.lr == 1e-4 and cfg.peft.r == 8 and cfg.peft.target_modules == ["query"]
    with pytest.raises(ConfigError) as exc:
        load_config(path, ["optim.lr=fast", "trainer.nope=1"])
    assert any(p.startswith("optim.lr: ") and "'fast'" in p for p in exc.value.problems)
    assert "trainer.nope: unknown key" in exc.value.problems


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(path)


def test_yaml_tags_are_not_executed(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("data: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_experiment_id_is_stable_and_ignores_tracking() -> None:
    a = validate(tiny_config())
    b = validate(apply_overrides(tiny_config(), ["tracking.mode=offline", "tracking.tags=[x]"]))
    c = validate(apply_overrides(tiny_config(), ["optim.lr=0.01"]))
    assert experiment_id(a) == experiment_id(b)
    assert experiment_id(a) != experiment_id(c)
    assert len(experiment_id(a)) == 12 and experiment_id(a) == experiment_id(validate(tiny_config()))
    # defaults written out explicitly hash the same as defaults left implicit
    assert experiment_id(validate(a.model_dump(mode="json"))) == experiment_id(a)


def test_shipped_configs_validate() -> None:
    root = Path(__file__).parents[3]
    shipped = [
        root / "experiments" / "config" / "defaults" / "quickstart.yaml",
        *sorted((root / "configs").glob("*.yaml")),
    ]
    assert len(shipped) >= 3
    for path in shipped:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ecomlab run"), f"{path} must start with the command that runs it"
        load_config(path)
