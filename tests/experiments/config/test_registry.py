"""The registries, the config's allowed names and the files on disk agree; every declaration resolves."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import get_args

import lightning.pytorch as pl

from datamodules.dataset import DatasetConfig
from experiments import config
from experiments.config import schema
from experiments.config.registry import DATASETS, TASKS
from experiments.core.assets import ASSETS
from lightning_modules.task_module import TaskModule

ROOT = Path(__file__).parents[3]


def test_dataset_registry_matches_files() -> None:
    """One `DatasetConfig` subclass per data-set module; every other module there is shared machinery."""
    on_disk = {}
    for path in sorted((ROOT / "datamodules").glob("*.py")):
        module = importlib.import_module(f"datamodules.{path.stem}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, DatasetConfig)
                and cls.__module__ == module.__name__
                and "dataset" in cls.model_fields
            ):
                on_disk[path.stem] = cls
    assert on_disk == DATASETS
    assert all(cls.model_fields["dataset"].default == name for name, cls in DATASETS.items())
    variants = get_args(get_args(schema.DataConfig)[0])
    assert set(variants) == set(DATASETS.values())


def test_every_dataset_declares_itself_and_its_datamodule_resolves() -> None:
    for name, cls in DATASETS.items():
        assert cls.tasks and set(cls.tasks) <= set(TASKS), name
        assert cls.targets and cls.size and cls.language, name
        assert set(cls.assets) <= set(ASSETS), name
        assert issubclass(cls.datamodule_class(), pl.LightningDataModule), name


def test_knob_registry_matches_the_knob_modules_and_the_config() -> None:
    """Every module that declares a `KNOB` is registered once, in the config's group order, and each
    knob's group is a field of the experiment config whose keys all have a description."""
    from experiments.config.registry import KNOBS
    from experiments.core.knob import Knob

    declared = {}
    for folder in (ROOT / "lightning_modules" / "knobs", ROOT / "datamodules"):
        package = ".".join(folder.relative_to(ROOT).parts)
        for path in sorted(folder.glob("*.py")):
            knob = getattr(importlib.import_module(f"{package}.{path.stem}"), "KNOB", None)
            if isinstance(knob, Knob):
                declared[knob.group] = knob
    assert declared == KNOBS
    fields = list(config.ExperimentConfig.model_fields)
    assert fields[3 : 3 + len(KNOBS)] == list(KNOBS)  # task, seed, data, then the knobs, then trainer
    for name, knob in KNOBS.items():
        assert config.ExperimentConfig.model_fields[name].annotation is knob.config
        assert knob.description and all(f.description for f in knob.config.model_fields.values()), name


def test_task_registry_matches_packages_and_specs() -> None:
    """One package per task; its torch-free SPEC names a TaskModule subclass that carries the same spec."""
    packages = {p.parent.name for p in (ROOT / "lightning_modules").glob("*/__init__.py")} - {
        "knobs",
        "weights",
    }
    assert packages == set(TASKS)
    assert set(get_args(config.ExperimentConfig.model_fields["task"].annotation)) == set(TASKS)
    for name, spec in TASKS.items():
        assert spec.name == name
        cls = spec.module_class()
        assert issubclass(cls, TaskModule) and cls.spec is spec
        assert spec.monitor in {f"val/{m}" for m in spec.metrics}
        assert spec.best_metric in spec.final_metrics
        if spec.group:
            assert spec.group in config.ExperimentConfig.model_fields


def test_every_shipped_config_validates_and_names_its_command() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        assert path.read_text().splitlines()[0].startswith(f"# ecomlab run configs/{path.name}"), path
        cfg = config.load_config(path)
        assert cfg.data.dataset in DATASETS


def test_every_dataset_has_an_example_config() -> None:
    assert {p.stem for p in (ROOT / "configs").glob("*.yaml")} == set(DATASETS)


def test_every_task_has_a_shipped_sweep_and_config() -> None:
    import yaml

    tasks_in_sweeps = set()
    for path in (ROOT / "sweeps").glob("*.yaml"):
        base = yaml.safe_load(path.read_text())["base"]
        if isinstance(base, dict):
            tasks_in_sweeps.add(config.validate(base).task)
    assert tasks_in_sweeps == set(TASKS)


def test_the_config_imports_no_heavy_library() -> None:
    """The config, the registry and every declaration are torch-free: `ecomlab config` and sweep
    validation start at once."""
    import subprocess
    import sys

    code = (
        "import sys, experiments.config, experiments.sweep.file\n"
        "heavy = [m for m in ('torch', 'lightning', 'transformers', 'pandas', 'numpy') if m in sys.modules]\n"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
