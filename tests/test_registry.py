"""The registries, the config's allowed names and the files on disk agree."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import get_args

import lightning.pytorch as pl

from experiments import config
from experiments.registry import DATAMODULES, DATASET_INFO, TASKS

ROOT = Path(__file__).parents[1]


def classes_on_disk(folder: str, base: type) -> dict[str, type]:
    found = {}
    for path in sorted((ROOT / folder).glob("*.py")):
        module = importlib.import_module(f"{folder}.{path.stem}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, base) and cls.__module__ == module.__name__ and getattr(cls, "name", None):
                found[path.stem] = cls
    return found


def test_datamodule_registry_matches_files() -> None:
    on_disk = classes_on_disk("datamodules", pl.LightningDataModule)
    assert on_disk == DATAMODULES
    assert all(cls.name == name for name, cls in DATAMODULES.items())
    assert set(DATASET_INFO) == set(DATAMODULES) == set(config.DATASET_NAMES)
    variants = get_args(get_args(config.DataConfig)[0])
    assert {v.model_fields["dataset"].default for v in variants} == set(DATAMODULES)


def test_task_registry_matches_files_and_metrics() -> None:
    on_disk = {stem for stem, cls in classes_on_disk("lightning_modules", pl.LightningModule).items()}
    assert on_disk == set(TASKS)  # one LightningModule per task file (evaluation.py holds shared helpers)
    assert set(get_args(config.ExperimentConfig.model_fields["task"].annotation)) == set(TASKS)
    for name, cls in TASKS.items():
        assert tuple(cls.METRICS) == config.TASK_METRICS[name]


def test_every_shipped_config_validates_and_names_its_command() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        assert path.read_text().splitlines()[0].startswith(f"# ecomlab run configs/{path.name}"), path
        cfg = config.load_config(path)
        assert cfg.data.dataset in DATAMODULES


def test_every_task_has_a_shipped_sweep_and_config() -> None:
    import yaml

    tasks_in_sweeps = set()
    for path in (ROOT / "sweeps").glob("*.yaml"):
        base = yaml.safe_load(path.read_text())["base"]
        if isinstance(base, dict):
            tasks_in_sweeps.add(config.validate(base).task)
    assert tasks_in_sweeps == set(TASKS)
