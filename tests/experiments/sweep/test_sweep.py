"""Sweeps: a real Optuna study in SQLite, trials through train(cfg), workers, resume, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from experiments.cli import app
from experiments.config import experiment_id, load_config
from experiments.core.errors import ConfigError, EcomlabError
from experiments.results.storage import default_storage_url, load_study
from experiments.sweep.file import load_sweep
from experiments.sweep.study import open_study
from tests.conftest import tiny_config

runner = CliRunner()
ROOT = Path(__file__).parents[3]


def write_sweep(tmp_path: Path, name: str = "tiny", **overrides: Any) -> Path:
    spec: dict[str, Any] = {
        "base": tiny_config(data={"batch_size": 8}, trainer={"max_epochs": 2}),
        "metric": {"name": "val/f1", "goal": "maximize"},
        "budget": {"n_trials": 3},
        "sampler": {"type": "random", "seed": 3},
        "parameters": {
            "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "model.hidden_dropout": {"values": [0.0, 0.1, 0.2]},
            "peft.r": {"values": [0, 4]},
        },
    }
    spec.update(overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def study_of(tmp_path: Path, name: str = "tiny", url: str | None = None) -> optuna.Study:
    return load_study(name, url or default_storage_url(tmp_path / "runs"))


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]


def sweep_cli(*args: str) -> Any:
    result = runner.invoke(app, ["sweep", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def start_sweep(path: Path, tmp_path: Path) -> subprocess.Popen:
    """`ecomlab sweep` as a separate process, as a user starts it in a terminal."""
    exe = Path(sys.executable).parent / "ecomlab"
    return subprocess.Popen(
        [str(exe), "sweep", str(path), "--runs-dir", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )


def wait_for_running_trial(storage: str, timeout: float = 120) -> optuna.trial.FrozenTrial:
    """The first trial that is RUNNING and has started its run (so it has a worker pid)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            trials = load_study("tiny", storage).get_trials()
        except Exception:
            continue  # the study is not created yet
        for t in trials:
            if t.state.name == "RUNNING" and "pid" in t.user_attrs and "experiment_id" in t.user_attrs:
                return t
    raise AssertionError("no trial started")


def test_three_trial_sweep_completes_and_records_each_run(tmp_path: Path, storage_url: str | None) -> None:
    path = write_sweep(tmp_path, storage=storage_url)
    result = sweep_cli(str(path))
    assert "Study tiny: 3 trial(s)" in result.output and "Best: trial" in result.output
    study = study_of(tmp_path, url=storage_url)
    trials = finished(study)  # Hyperband (the default pruner) may stop some of them
    assert len(trials) == 3 == len(study.get_trials())
    ids = [t.user_attrs["experiment_id"] for t in trials]
    assert len(set(ids)) == 3
    for t, exp_id in zip(trials, ids):
        rec = tmp_path / "runs" / exp_id
        if t.state.name == "COMPLETE":
            metrics = json.loads((rec / "metrics.json").read_text())
            assert metrics["val/f1"] == pytest.approx(t.value)
            kept = t.user_attrs["metrics"]  # the run's val/model metrics ride on the trial
            assert kept["val/acc_top3"] == metrics["val/acc_top3"] and "model/sparsity" in kept
            assert not any(k.startswith("test/") for k in kept)  # trials report val only
            assert not any(k.startswith("time/") for k in kept)
        else:
            assert json.loads((rec / "manifest.json").read_text())["status"] == "pruned"
        config = yaml.safe_load((rec / "config.yaml").read_text())
        assert config["optim"]["lr"] == pytest.approx(t.params["optim.lr"])
        assert config["tracking"]["group"] == "tiny" and config["tracking"]["job_type"] == "sweep"
    assert study.user_attrs["metrics"] == [{"name": "val/f1", "goal": "maximize"}]
    for t in trials:  # one report per training epoch (max_epochs 2), none from the final evaluation
        assert sorted(t.intermediate_values) == ([0, 1] if t.state.name == "COMPLETE" else [0])


def test_without_a_pruner_every_epoch_is_still_reported(tmp_path: Path) -> None:
    # the dashboard's learning curves and bench/sweep_pruning.py read intermediate values of every study
    sweep_cli(str(write_sweep(tmp_path, pruner={"type": "none"}, budget={"n_trials": 1})))
    (trial,) = study_of(tmp_path).get_trials()
    assert trial.state.name == "COMPLETE" and sorted(trial.intermediate_values) == [0, 1]
    assert max(trial.intermediate_values.values()) == pytest.approx(trial.value)  # the best epoch is kept


def test_rerunning_resumes_without_repeating_finished_trials(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    sweep_cli(str(path), "--n-trials", "1")
    first = {t.number: t.user_attrs["experiment_id"] for t in finished(study_of(tmp_path))}
    assert len(first) == 1
    sweep_cli(str(path), "--n-trials", "3")
    study = study_of(tmp_path)
    after = {t.number: t.user_attrs["experiment_id"] for t in finished(study)}
    assert len(after) == 3 and {k: after[k] for k in first} == first
    assert len(set(after.values())) == 3
    sweep_cli(str(path), "--n-trials", "3")  # budget met: nothing new
    assert len(study_of(tmp_path).get_trials()) == 3


def test_a_diverging_trial_is_pruned(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        metric={"name": "val/loss", "goal": "minimize"},
        budget={"n_trials": 2},
        pruner={"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        parameters={"optim.lr": {"type": "float", "low": 1e-9, "high": 1.0, "log": True}},
    )
    sw = load_sweep(path)
    study = open_study(sw, tmp_path / "runs", sampling=False)[0]
    study.enqueue_trial({"optim.lr": 1e-9})  # barely moves: loss stays near ln 2
    study.enqueue_trial({"optim.lr": 0.5})  # diverges in the first epoch
    sweep_cli(str(path))
    states = {t.params["optim.lr"]: t.state.name for t in study_of(tmp_path).get_trials()}
    assert states == {1e-9: "COMPLETE", 0.5: "PRUNED"}
    pruned = [t for t in study_of(tmp_path).get_trials() if t.state.name == "PRUNED"][0]
    assert list(pruned.intermediate_values) == [0]  # stopped after its first epoch
    manifest = json.loads(
        (tmp_path / "runs" / pruned.user_attrs["experiment_id"] / "manifest.json").read_text()
    )
    assert manifest["status"] == "pruned"


def test_a_failing_trial_is_marked_failed_and_the_study_goes_on(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path, budget={"n_trials": 2}, parameters={"model.freeze_layers": {"values": [0, 9]}}
    )  # 9 > the 2 layers there are
    sw = load_sweep(path)
    study = open_study(sw, tmp_path / "runs", sampling=False)[0]
    study.enqueue_trial({"model.freeze_layers": 9})
    study.enqueue_trial({"model.freeze_layers": 0})
    study.enqueue_trial({"model.freeze_layers": 0})
    sweep_cli(str(path))
    trials = study_of(tmp_path).get_trials()
    assert trials[0].state.name == "FAIL" and "freeze_layers" in trials[0].user_attrs["error"]
    manifest = json.loads(
        (tmp_path / "runs" / trials[0].user_attrs["experiment_id"] / "manifest.json").read_text()
    )
    assert manifest["status"] == "failed" and "freeze_layers" in manifest["error"]
    assert len(finished(study_of(tmp_path))) == 2


def fake_gpus(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The monitor process sees n CUDA devices; workers are real processes and train on the CPU."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_two_workers_share_the_budget_without_running_a_trial_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_gpus(monkeypatch, 2)
    path = write_sweep(tmp_path, budget={"n_trials": 4})
    result = sweep_cli(str(path), "--workers", "2")
    assert "2 worker(s), 1 CPU thread(s) each, GPUs [['0'], ['1']]" in result.output
    study = study_of(tmp_path)
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len({t.user_attrs["experiment_id"] for t in trials}) == 4
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    # each worker ran its trials on its own device only (CUDA_VISIBLE_DEVICES of its process)
    assert {(t.user_attrs["worker"], t.user_attrs["devices"]) for t in trials} == {(0, "0"), (1, "1")}


def test_devices_per_trial_follow_the_base_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.sweep.monitor import plan_devices

    fake_gpus(monkeypatch, 4)
    two = load_sweep(write_sweep(tmp_path, "two", base=tiny_config(trainer={"max_epochs": 2, "devices": 2})))
    assert plan_devices(2, None, two) == [["0", "1"], ["2", "3"]]  # K defaults to trainer.devices
    with pytest.raises(EcomlabError, match="needs 6 GPUs; this machine has 4"):
        plan_devices(3, None, two)
    one = load_sweep(write_sweep(tmp_path, "one"))  # trainer.devices 1
    with pytest.raises(EcomlabError, match="set trainer.devices: 2 in the base config"):
        plan_devices(2, 2, one)
    monkeypatch.setattr(__import__("torch").cuda, "is_available", lambda: False)
    assert plan_devices(2, 2, one) is None  # on CPU threads are divided instead


# In the slow tier: tests/experiments/sweep/test_chaos.py SIGKILLs workers of two sweeps on SQLite and
# PostgreSQL by default, and test_machines.py a monitor; this one checks the retried trial's parameters.
@pytest.mark.slow
@pytest.mark.parametrize("storage_url", ["sqlite", "postgresql"], indirect=True)  # MariaDB: the 3-trial test
def test_a_sigkilled_worker_trial_is_failed_and_retried(tmp_path: Path, storage_url: str | None) -> None:
    # a budget of one: the killed trial's retry is what completes it
    path = write_sweep(
        tmp_path,
        budget={"n_trials": 1},
        base=tiny_config(data={"batch_size": 4}, trainer={"max_epochs": 4}),
        faults={"heartbeat_interval": 1, "grace_period": 3},
        storage=storage_url,
    )
    proc = start_sweep(path, tmp_path)
    storage = storage_url or default_storage_url(tmp_path / "runs")
    victim = wait_for_running_trial(storage)
    os.kill(victim.user_attrs["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    trials = load_study("tiny", storage).get_trials()
    killed = trials[victim.number]
    assert killed.state.name == "FAIL"
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == killed.params
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]


def test_every_shipped_sweep_validates() -> None:
    files = sorted((ROOT / "sweeps").glob("*.yaml"))
    assert len(files) >= 3
    for path in files:
        assert path.read_text().splitlines()[0].startswith("# ecomlab sweep "), path
        sw = load_sweep(path)
        searched = {q.path for p in sw.params for q in p.flat() if q.searched}
        if path.stem.startswith("families-"):
            # a family sweep answers "which model family": each family's learning rate in its own branch
            (family,) = sw.params
            assert family.path == "model.backbone" and len(family.choices) >= 3, path
            assert all("optim.lr" in {q.path for q in sub} for _, sub in family.branches), path
            assert "peft.r" in searched, path
        elif not path.stem.startswith("quickstart"):  # quickstarts are demonstrations on a time budget
            assert {"optim.lr", "optim.warmup", "prune.ratio"} <= searched, path
            assert any("dropout" in p for p in searched), path
            # LoRA rank wherever there is a transformer; click-through searches its imbalance knobs instead
            if sw.base["data"]["dataset"] == "open_bandit":
                assert {"ctr.pos_weight", "data.negative_sampling"} <= searched, path
            else:
                assert "peft.r" in searched, path


def test_a_wandb_sweep_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "wandb.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "program": "train.py",
                "method": "bayes",
                "metric": {"name": "val/f1", "goal": "maximize"},
                "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
                "base": tiny_config(),
                "parameters": {
                    "optim.lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-3},
                    "optim.warmup": {"distribution": "uniform", "min": 0.0, "max": 0.2},
                    "peft.r": {"distribution": "int_uniform", "min": 0, "max": 8},
                    "prune.ratio": {"distribution": "q_uniform", "min": 0.0, "max": 0.5, "q": 0.1},
                    "model.hidden_dropout": {"values": [0.0, 0.1]},
                    "seed": {"value": 3},
                },
            }
        )
    )
    sw = load_sweep(path)
    p = {x.path: x for x in sw.params}
    assert (p["optim.lr"].kind, p["optim.lr"].log, p["optim.lr"].low) == ("float", True, 1e-5)
    assert (p["peft.r"].kind, p["peft.r"].high) == ("int", 8)
    assert p["prune.ratio"].step == 0.1 and p["model.hidden_dropout"].choices == (0.0, 0.1)
    assert p["seed"].kind == "fixed" and sw.experiment({}).seed == 3
    assert (
        sw.spec.sampler.type == "tpe"
        and sw.spec.pruner.type == "hyperband"
        and sw.spec.pruner.reduction_factor == 2
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"parameters": {"optim.lr": {"type": "float", "low": 0.1, "high": 0.01}}},
            "parameters.optim.lr: low/min (0.1) is greater than high/max (0.01)",
        ),
        (
            {"parameters": {"optim.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}},
            "parameters.optim.lr: a log range must be above 0 (got low 0.0)",
        ),
        (
            {"parameters": {"optim.lrate": {"values": [0.1]}}},
            "parameters.optim.lrate: the experiment config has no key 'optim.lrate'",
        ),
        ({"parameters": {"peft.r": {"values": [4, "big"]}}}, "parameters.peft.r: value 'big' is invalid"),
        (
            {"parameters": {"optim.lr": {"type": "float", "lo": 1, "high": 2}}},
            "parameters.optim.lr: unknown key(s) lo",
        ),
        ({"metric": {"name": "val/auc"}}, "metric.name: task 'text_classification' never logs 'val/auc'"),
        ({"budget": {"n_trials": 0}}, "budget.n_trials:"),
        ({"samplr": {"type": "tpe"}}, "samplr: unknown key"),
        ({"base": "missing.yaml"}, "base: experiment config not found"),
        (
            {
                "metrics": [{"name": "val/f1"}, {"name": "model/trainable_params", "goal": "minimize"}],
                "metric": None,
                "pruner": {"type": "hyperband"},
            },
            "pruner.type: Optuna cannot prune multi-objective",
        ),
        (
            {"pruner": {"type": "hyperband", "min_resource": 2}},  # the base trains 2 epochs: steps 0 and 1
            "pruner.min_resource: 2 is not below the trials' 2 epochs, so hyperband would never stop a trial",
        ),
        (
            {"early_terminate": {"type": "hyperband", "min_iter": 3}},
            "pruner.min_resource: 3 is not below the trials' 2 epochs",
        ),
        (
            {
                "base": tiny_config(trainer={"max_epochs": 4}),
                "pruner": {"type": "hyperband", "min_resource": 2, "max_resource": 2},
            },
            "pruner.min_resource: 2 is not below pruner.max_resource (2)",
        ),
    ],
)
def test_bad_sweep_files_give_their_error_before_any_trial(
    tmp_path: Path, change: dict, expected: str
) -> None:
    path = write_sweep(tmp_path, **change)
    with pytest.raises(ConfigError) as exc:
        load_sweep(path)
    assert any(expected in p for p in exc.value.problems), exc.value.problems
    assert not (tmp_path / "runs").exists()


def test_all_mistakes_are_reported_at_once(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        metric={"name": "val/auc"},
        parameters={
            "optim.lr": {"type": "float", "low": 1.0, "high": 0.1},
            "optim.nope": {"values": [1]},
            "peft.r": {"values": [-3]},
        },
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ecomlab"), "sweep", str(path), "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "4 config problem(s)" in proc.stderr
    for needle in ("metric.name", "parameters.optim.lr", "parameters.optim.nope", "parameters.peft.r"):
        assert needle in proc.stderr


def test_dry_run_prints_the_space_and_base_id(tmp_path: Path) -> None:
    result = sweep_cli(str(write_sweep(tmp_path)), "--dry-run")
    assert "float log [0.0001, 0.01]" in result.output and "base experiment id:" in result.output
    assert not (tmp_path / "runs" / "optuna.db").exists() or not study_names(tmp_path)


def study_names(tmp_path: Path) -> list[str]:
    from experiments.results.storage import storage

    return [
        s.study_name for s in optuna.get_all_study_summaries(storage(default_storage_url(tmp_path / "runs")))
    ]


def test_best_export_reruns_to_the_same_experiment_id(tmp_path: Path) -> None:
    sweep_cli(str(write_sweep(tmp_path, budget={"n_trials": 2}, pruner={"type": "none"})))
    out = tmp_path / "best.yaml"
    result = runner.invoke(app, ["study", "best", "tiny", "--export", str(out)])
    assert result.exit_code == 0, result.output
    best = study_of(tmp_path).best_trial
    assert experiment_id(load_config(out)) == best.user_attrs["experiment_id"]
    assert out.read_text().startswith(f"# ecomlab run {out}")
    again = runner.invoke(app, ["run", str(out)])
    assert "already completed" in again.output
    shown = runner.invoke(app, ["study", "show", "tiny"])
    assert best.user_attrs["experiment_id"] in shown.output
    listed = runner.invoke(app, ["study", "list"])
    assert "tiny" in listed.output
    missing = runner.invoke(app, ["study", "show", "tinyy"])
    assert missing.exit_code != 0 and "Close matches: tiny" in str(missing.exception)


def test_ctrl_c_stops_cleanly_and_a_rerun_resumes(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path, budget={"n_trials": 2}, base=tiny_config(data={"batch_size": 4}, trainer={"max_epochs": 4})
    )
    proc = start_sweep(path, tmp_path)
    storage = default_storage_url(tmp_path / "runs")
    wait_for_running_trial(storage)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    words = " ".join(out.split())
    assert "Interrupted." in words and "to resume" in words
    trials = load_study("tiny", storage).get_trials()
    assert not [t for t in trials if t.state.name == "RUNNING"]  # storage left consistent
    sweep_cli(str(path), "--runs-dir", str(tmp_path / "runs"))
    assert len(finished(load_study("tiny", storage))) == 2


def test_multi_objective_sweep_shows_its_pareto_front(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        metric=None,
        budget={"n_trials": 2},
        sampler={"seed": 1},
        metrics=[
            {"name": "val/f1", "goal": "maximize"},
            {"name": "model/trainable_params", "goal": "minimize"},
        ],
    )
    sw = load_sweep(path)
    assert sw.spec.sampler.type == "nsga2" and sw.spec.pruner.type == "none"
    result = sweep_cli(str(path))
    assert "Pareto front: trial" in " ".join(result.output.split())
    study = study_of(tmp_path)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert all(len(t.values) == 2 for t in study.best_trials)

    # its report draws the Pareto front (and the rest against the first metric)
    from experiments.analysis.report import build

    rep = build(["tiny"], tmp_path / "runs", tmp_path / "r.html")
    assert {"tiny-pareto_front", "tiny-optimization_history", "tiny-parallel_coordinate"} <= set(rep.figures)
    assert 'id="tiny-pareto_front-plot"' in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("kind", ["tpe", "random", "gp", "cmaes", "nsga2", "grid"])
def test_every_sampler_can_be_built(tmp_path: Path, kind: str) -> None:
    from experiments.sweep.search import sampler as build_sampler
    from experiments.sweep.space import grid_space

    params = {"optim.lr": {"values": [1e-4, 1e-3]}, "peft.r": {"type": "int", "low": 0, "high": 8, "step": 4}}
    sw = load_sweep(write_sweep(tmp_path, sampler={"type": kind, "seed": 0}, parameters=params))
    sampler = build_sampler(sw, sw.spec.sampler.seed)
    assert (
        type(sampler)
        .__name__.lower()
        .startswith(
            {
                "tpe": "tpe",
                "random": "random",
                "gp": "gp",
                "cmaes": "cmaes",
                "nsga2": "nsgaii",
                "grid": "grid",
            }[kind]
        )
    )
    if kind == "grid":
        assert grid_space(sw.searched) == {"optim.lr": [1e-4, 1e-3], "peft.r": [0, 4, 8]}


def test_trial_wandb_runs_share_the_study_group_and_carry_params_at_top_level(tmp_path: Path) -> None:
    from tests.wandb_records import summary

    base = tiny_config(tracking={"mode": "offline"}, trainer={"max_epochs": 1})
    sweep_cli(str(write_sweep(tmp_path, base=base, budget={"n_trials": 1})))
    (trial,) = study_of(tmp_path).get_trials()
    (run_file,) = (tmp_path / "runs" / trial.user_attrs["experiment_id"]).glob(
        "wandb/offline-run-*/run-*.wandb"
    )
    info = summary(run_file)
    assert info["group"] == "tiny" and info["job_type"] == "sweep" and "study:tiny" in info["tags"]
    assert info["config"]["optim.lr"] == pytest.approx(trial.params["optim.lr"])  # flat, for W&B's panels
    assert info["config"]["trial"] == trial.number and info["config"]["study"] == "tiny"
    assert "val/f1" in info["history"] and info["summary"]["val/f1"] == pytest.approx(trial.value)

    # and when the sweep ends, one study-level run: best parameters on top, the trials table, importances
    (study_file,) = (tmp_path / "runs" / "sweeps" / "tiny").glob("wandb/offline-run-*/run-*.wandb")
    info = summary(study_file)
    assert info["group"] == "tiny" and info["job_type"] == "study" and info["name"] == "study-tiny"
    assert info["config"]["optim.lr"] == pytest.approx(trial.params["optim.lr"])
    assert info["summary"]["best/val/f1"] == pytest.approx(trial.value)
    assert info["summary"]["best/experiment_id"] == trial.user_attrs["experiment_id"]
    assert info["summary"]["trials/nrows"] == 1 and info["summary"]["trials/complete"] == 1
    base = study_of(tmp_path).user_attrs["baseline"]  # and the baseline beside the best trial
    assert info["summary"]["baseline/val/f1"] == base["metrics"]["val/f1"]
    assert info["summary"]["best_vs_baseline/val/f1"] == pytest.approx(
        trial.value - base["metrics"]["val/f1"]
    )


def test_the_pruner_check_reads_epochs_pinned_in_parameters(tmp_path: Path) -> None:
    """W&B users pin a value in `parameters` (`trainer.max_epochs: {value: 4}`): the first-rung check
    uses it, not the base config's epochs (which used to refuse a valid file)."""
    wandb_style = {
        "method": "random",
        "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 3},
        "parameters": {
            "trainer.max_epochs": {"value": 4},
            "optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        },
        "base": tiny_config(trainer={"max_epochs": 1}),
    }
    sw = load_sweep(write_sweep(tmp_path, "pinned", **wandb_style))
    assert sw.spec.pruner.type == "hyperband" and sw.spec.pruner.min_resource == 2
    searched = {**wandb_style["parameters"], "trainer.max_epochs": {"values": [1, 2, 6]}}
    assert load_sweep(write_sweep(tmp_path, "searched", **{**wandb_style, "parameters": searched}))
    too_few = {
        **wandb_style,
        "base": tiny_config(trainer={"max_epochs": 8}),
        "parameters": {**wandb_style["parameters"], "trainer.max_epochs": {"value": 2}},
    }
    with pytest.raises(ConfigError) as exc:
        load_sweep(write_sweep(tmp_path, "too_few", **too_few))
    assert any("pruner.min_resource: 2 is not below the trials' 2 epochs" in p for p in exc.value.problems)
