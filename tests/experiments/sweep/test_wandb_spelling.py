"""A W&B sweep file ports with no edits: every top-level key, every distribution (mapped to the
nearest Optuna one, approximations said), nested parameters, early_terminate and metric.target."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.core.errors import ConfigError
from experiments.sweep.file import load_sweep
from tests.conftest import tiny_config


def write(tmp_path: Path, spec: dict[str, Any], name: str = "wandb") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"base": tiny_config(trainer={"max_epochs": 3}), **spec}))
    return path


def test_the_w_and_b_docs_example_loads_as_is(tmp_path: Path) -> None:
    """In the spirit of W&B's "Define a sweep configuration" page, with ecomlab's own metric and keys."""
    sw = load_sweep(
        write(
            tmp_path,
            {
                "program": "train.py",
                "name": "sweepdemo",
                "description": "learning rate and batch size",
                "project": "shop-reviews",
                "entity": "my-team",
                "method": "bayes",
                "metric": {"goal": "minimize", "name": "val/loss"},
                "parameters": {
                    "optim.lr": {"min": 0.0001, "max": 0.1},
                    "data.batch_size": {"values": [16, 32, 64]},
                    "trainer.max_epochs": {"values": [2, 3]},
                    "optim.schedule": {"values": ["linear", "cosine"]},
                },
                "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
                "command": ["${env}", "python", "${program}", "${args}"],
                "run_cap": 5,
            },
        )
    )
    assert sw.name == "sweepdemo" and sw.spec.project == "shop-reviews" and sw.spec.entity == "my-team"
    assert (
        sw.spec.sampler.type == "tpe"
        and sw.spec.pruner.type == "hyperband"
        and sw.spec.pruner.reduction_factor == 2
    )
    assert sw.spec.budget.n_trials == 5  # run_cap is the budget
    assert [(m.name, m.goal) for m in sw.objectives] == [("val/loss", "minimize")]
    lr = next(p for p in sw.params if p.path == "optim.lr")
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 0.0001, 0.1, False)
    assert any(n.startswith("program: ignored") for n in sw.notes)
    assert any(n.startswith("command: ignored") for n in sw.notes)


E = math.e
# distribution spec -> (kind, low, high, log, step, approximated)
DISTRIBUTIONS = {
    "constant": ({"value": 0.2}, ("fixed", None, None, False, None, False)),
    "categorical": ({"values": [0.0, 0.1]}, ("categorical", None, None, False, None, False)),
    "int_uniform": ({"min": 1, "max": 4}, ("int", 1, 4, False, None, False)),
    "uniform": ({"min": 0.0, "max": 0.5}, ("float", 0.0, 0.5, False, None, False)),
    "q_uniform": ({"min": 0.0, "max": 0.5, "q": 0.1}, ("float", 0.0, 0.5, False, 0.1, False)),
    "log_uniform": ({"min": -9.0, "max": -2.0}, ("float", E**-9, E**-2, True, None, False)),
    "log_uniform_values": ({"min": 1e-4, "max": 1e-1}, ("float", 1e-4, 1e-1, True, None, False)),
    "q_log_uniform": ({"min": -9.0, "max": -2.0, "q": 1e-4}, ("float", E**-9, E**-2, True, None, True)),
    "q_log_uniform_values": ({"min": 1e-4, "max": 1e-1, "q": 1e-4}, ("float", 1e-4, 1e-1, True, None, True)),
    "inv_log_uniform": ({"min": 2.0, "max": 9.0}, ("float", E**-9, E**-2, True, None, False)),
    "inv_log_uniform_values": ({"min": 1e-4, "max": 1e-1}, ("float", 1e-4, 1e-1, True, None, False)),
    "normal": ({"mu": 0.1, "sigma": 0.01}, ("float", 0.07, 0.13, False, None, True)),
    "q_normal": ({"mu": 0.1, "sigma": 0.01, "q": 0.01}, ("float", 0.07, 0.13, False, 0.01, True)),
    "log_normal": ({"mu": -6.0, "sigma": 1.0}, ("float", E**-9, E**-3, True, None, True)),
    "q_log_normal": ({"mu": -6.0, "sigma": 1.0, "q": 1e-4}, ("float", E**-9, E**-3, True, None, True)),
    "beta": ({"a": 2.0, "b": 5.0}, ("float", 0.0, 1.0, False, None, True)),
    "q_beta": ({"q": 0.1}, ("float", 0.0, 1.0, False, 0.1, False)),
}
TARGET = {
    "log_uniform": "optim.lr",
    "log_uniform_values": "optim.lr",
    "q_log_uniform": "optim.lr",
    "q_log_uniform_values": "optim.lr",
    "inv_log_uniform": "optim.lr",
    "inv_log_uniform_values": "optim.lr",
    "log_normal": "optim.lr",
    "q_log_normal": "optim.lr",
    "int_uniform": "model.freeze_layers",
}


@pytest.mark.parametrize("dist", sorted(DISTRIBUTIONS))
def test_every_w_and_b_distribution_maps_to_the_nearest_optuna_one(dist: str, tmp_path: Path) -> None:
    values, (kind, low, high, log, step, approximated) = DISTRIBUTIONS[dist]
    path = TARGET.get(dist, "optim.weight_decay")
    sw = load_sweep(
        write(
            tmp_path,
            {
                "method": "random",
                "metric": {"name": "val/f1", "goal": "maximize"},
                "parameters": {path: {"distribution": dist, **values}},
            },
        )
    )
    (p,) = sw.params
    assert p.kind == kind
    if low is not None:
        assert p.low == pytest.approx(low) and p.high == pytest.approx(high)
        assert p.log == log and (p.step or None) == (step and pytest.approx(step))
    assert (p.note is not None) == approximated, p.note
    assert ("approximated" in p.describe()) == approximated  # what --dry-run prints


def test_nested_parameters_and_the_default_goal(tmp_path: Path) -> None:
    sw = load_sweep(
        write(
            tmp_path,
            {
                "method": "random",
                "metric": {"name": "val/loss"},  # W&B's default goal: minimize
                "parameters": {
                    "optim": {
                        "parameters": {
                            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
                            "warmup": {"value": 0.0},
                        }
                    },
                    "model": {"parameters": {"tiny": {"parameters": {"layers": {"values": [1, 2]}}}}},
                },
            },
        )
    )
    assert {p.path for p in sw.params} == {"optim.lr", "optim.warmup", "model.tiny.layers"}
    assert sw.objectives[0].goal == "minimize" and any("minimize (W&B's default)" in n for n in sw.notes)
    native = load_sweep(
        write(tmp_path, {"metric": {"name": "val/f1"}, "parameters": {"optim.lr": 1e-3}}, "n")
    )
    assert native.objectives[0].goal == "maximize"  # ecomlab's own files keep their default


def test_hyperband_max_iter_with_s_and_strict(tmp_path: Path) -> None:
    sw = load_sweep(
        write(
            tmp_path,
            {
                "method": "random",
                "metric": {"name": "val/f1", "goal": "maximize"},
                "base": tiny_config(trainer={"max_epochs": 27}),
                "early_terminate": {"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3, "strict": True},
                "parameters": {"optim.lr": {"min": 1e-4, "max": 1e-2}},
            },
        )
    )
    assert (sw.spec.pruner.min_resource, sw.spec.pruner.max_resource, sw.spec.pruner.reduction_factor) == (
        3,
        27,
        3,
    )
    assert any(n.startswith("early_terminate.strict: ignored") for n in sw.notes)


def test_w_and_b_mistakes_are_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_sweep(
            write(
                tmp_path,
                {
                    "method": "random",
                    "run_cap": 3,
                    "budget": {"n_trials": 4},
                    "metric": {"name": "val/f1", "goal": "maximize"},
                    "parameters": {
                        "optim.lr": {"distribution": "gamma", "min": 1},
                        "optim.warmup": {"distribution": "normal", "sigma": -1},
                        "model.hidden_dropout": {"distribution": "uniform", "min": 0.1},
                    },
                },
            )
        )
    found = exc.value.problems
    assert any("run_cap" in p for p in found)
    assert any(
        p.startswith("parameters.optim.lr.distribution: 'gamma' is not a W&B distribution") for p in found
    )
    assert any(p.startswith("parameters.optim.warmup.sigma: must be > 0") for p in found)
    assert any("distribution uniform needs min and max" in p for p in found)


def test_metric_target_stops_new_trials_once_reached(tmp_path: Path) -> None:
    """W&B's metric.target: the first complete trial reaches val/f1 >= 0 (every trial does), so the
    worker starts no second one although the budget is 3."""
    import optuna
    from rich.console import Console

    from experiments.sweep.worker import run_worker

    path = write(
        tmp_path,
        {
            "method": "random",
            "metric": {"name": "val/f1", "goal": "maximize", "target": 0.0},
            "base": tiny_config(data={"batch_size": 8}, trainer={"max_epochs": 1}),
            "run_cap": 3,
            "parameters": {"optim.lr": {"min": 1e-3, "max": 1e-2}},
        },
    )
    ran = run_worker(path, tmp_path / "runs", 0, None, console=Console(quiet=True))
    assert ran == 1
    study = optuna.load_study(study_name="wandb", storage=f"sqlite:///{tmp_path / 'runs' / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"]
