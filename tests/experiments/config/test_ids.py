"""Experiment ids are promises: the ids below were computed before the id scheme gained its
new-field rule (experiments/experiment_id.py) and must never change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from experiments.config import experiment_id, load_config
from experiments.sweep.file import load_sweep
from experiments.sweep.study import base_experiment_id

ROOT = Path(__file__).parents[3]
FIXTURES = ROOT / "tests" / "fixtures"

# Written into this test before any change to the config or the id function.
PINNED = {
    "configs/banking77.yaml": "4e182ac31431",
    "configs/dangdang_reviews.yaml": "904b23dd581f",
    "configs/electronics_prices.yaml": "b3ebea16b877",
    "configs/electronics_products.yaml": "94cf33c8bd10",
    "configs/fake_reviews.yaml": "54d9136b3c85",
    "configs/open_bandit.yaml": "24fd5838c465",
    "configs/pc_prices.yaml": "2f77000d74b0",
    "sweeps/teachers/womens_clothing_reviews.yaml": "0f84569a492f",
    "configs/text_file.yaml": "553672aaa3db",
    "configs/womens_clothing_reviews.yaml": "ffdccb811a09",
    "experiments/config/defaults/quickstart.yaml": "8bc880298327",
    "tests/fixtures/config_schema1.yaml": "446bd1c22b37",
}
PINNED_SWEEP_BASES = {
    "click_through-open_bandit.yaml": "bcacbb51f4d2",
    "cv-electronics_products.yaml": "b9449eb583b3",
    "families-womens_clothing_reviews.yaml": "3b1cd77afaed",
    "compress-womens_clothing_reviews.yaml": "dd862a60e9b0",
    "price_regression-electronics_prices.yaml": "b3ebea16b877",
    "price_regression-pc_prices.yaml": "2f77000d74b0",
    "quickstart-minilm.yaml": "e2ba981186ae",
    "quickstart.yaml": "f38e0efb896c",
    "text_classification-banking77.yaml": "4e182ac31431",
    "text_classification-dangdang_reviews.yaml": "904b23dd581f",
    "text_classification-electronics_products.yaml": "94cf33c8bd10",
    "text_classification-fake_reviews.yaml": "54d9136b3c85",
    "text_classification-womens_clothing_class.yaml": "97e23b379109",
    "text_classification-womens_clothing_reviews.yaml": "ffdccb811a09",
}


@pytest.mark.parametrize("path", sorted(PINNED))
def test_shipped_and_fixture_config_ids_never_change(path: str) -> None:
    assert experiment_id(load_config(ROOT / path)) == PINNED[path]


@pytest.mark.parametrize("name", sorted(PINNED_SWEEP_BASES))
def test_sweep_base_ids_never_change(name: str) -> None:
    assert base_experiment_id(load_sweep(ROOT / "sweeps" / name)) == PINNED_SWEEP_BASES[name]


def test_every_shipped_yaml_is_pinned() -> None:
    shipped = {f"configs/{p.name}" for p in (ROOT / "configs").glob("*.yaml")}
    shipped |= {f"sweeps/teachers/{p.name}" for p in (ROOT / "sweeps" / "teachers").glob("*.yaml")}
    assert shipped <= set(PINNED)
    assert {p.name for p in (ROOT / "sweeps").glob("*.yaml")} == set(PINNED_SWEEP_BASES)


def test_the_compress_sweeps_teacher_is_the_shipped_teacher_config() -> None:
    sw = load_sweep(ROOT / "sweeps" / "compress-womens_clothing_reviews.yaml")
    (teacher,) = [p for p in sw.params if p.path == "distill.teacher"]
    assert set(teacher.choices) == {None, PINNED["sweeps/teachers/womens_clothing_reviews.yaml"]}
    # it teaches the sweep's data: the same split, whatever max_length and batch size
    teacher_data = load_config(ROOT / "sweeps" / "teachers" / "womens_clothing_reviews.yaml").data
    assert sw.base["data"] == teacher_data.model_dump(include=set(sw.base["data"]))


def test_a_record_written_before_the_change_still_reproduces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/fixtures/records/446bd1c22b37 was written by `ecomlab run tests/fixtures/config_schema1.yaml`
    before the id scheme changed; today's code reads it as the same config and trains the same model:
    bit-identical on the kind of CPU that wrote it, and, since the record does not say which CPU that
    was, at least equivalent (every metric within 1e-4) on any other."""
    from rich.console import Console

    from experiments.run.reproduce import reproduce

    monkeypatch.chdir(ROOT)  # the record's data path is relative to the project
    shutil.copytree(FIXTURES / "records" / "446bd1c22b37", tmp_path / "runs" / "446bd1c22b37")
    console = Console(record=True, width=200)
    result = reproduce("446bd1c22b37", tmp_path / "runs", console=console)
    text = console.export_text()
    assert "edited after the run" not in text
    assert "same config" in text
    assert result.identical or result.equivalent, text
    if not result.identical:
        assert "Equivalent" in text and "cpu isa" in text


def test_a_new_defaulted_field_changes_no_id_until_it_is_used() -> None:
    """A knob added with a default that keeps today's behaviour leaves every id alone; turning it
    on gives a new id. The knob here is a dummy `optim.dummy_knob` and a whole dummy group."""
    from pydantic import Field, create_model

    from experiments.config.files import load_yaml
    from experiments.config.schema import ExperimentConfig
    from experiments.core.config_group import Group
    from lightning_modules.knobs.optim import OptimConfig

    optim = create_model(
        "OptimWithKnob", __base__=OptimConfig, dummy_knob=(float, Field(0.0, description="test only"))
    )
    group = create_model("DummyGroup", __base__=Group, method=(str, "none"), epsilon=(float, 1.0))
    extended = create_model(
        "ExtendedConfig",
        __base__=ExperimentConfig,
        optim=(optim, Field(default_factory=optim)),
        dummy=(group, Field(default_factory=group)),
    )
    for path, pinned in PINNED.items():
        raw = load_yaml(ROOT / path)
        cfg = extended.model_validate(raw)
        assert cfg.optim.dummy_knob == 0.0 and cfg.dummy.method == "none"
        assert experiment_id(cfg) == pinned, path
        assert experiment_id(extended.model_validate({**raw, "dummy": {"method": "none"}})) == pinned
        on = extended.model_validate({**raw, "optim": {**raw.get("optim", {}), "dummy_knob": 0.5}})
        assert experiment_id(on) != pinned
        assert experiment_id(extended.model_validate({**raw, "dummy": {"epsilon": 2.0}})) != pinned


def test_tracking_never_changes_the_id() -> None:
    from experiments.config import load_yaml, validate

    raw = load_yaml(FIXTURES / "config_schema1.yaml")
    raw["tracking"] = {"mode": "offline", "project": "elsewhere", "tags": ["x"]}
    assert experiment_id(validate(raw)) == PINNED["tests/fixtures/config_schema1.yaml"]
