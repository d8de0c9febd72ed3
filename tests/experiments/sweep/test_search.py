"""Search that spends compute where it matters: conditional sub-spaces, constraints, warm starts and the
cheapest trial within a tolerance of the best."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from experiments.core.errors import ConfigError, EcomlabError
from experiments.sweep.file import load_sweep
from experiments.sweep.space import suggest
from tests.conftest import tiny_config

CONDITIONAL = {
    "optim.schedule": {
        "type": "categorical",
        "choices": {
            "linear": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}},
            "cosine": {
                "optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
                "optim.warmup": {"type": "float", "low": 0.0, "high": 0.2},
                "peft.r": 4,  # pinned for this branch only
            },
        },
    }
}


def write(tmp_path: Path, name: str = "cond", **spec: Any) -> Path:
    doc = {
        "name": name,
        "base": tiny_config(data={"batch_size": 8}, trainer={"max_epochs": 2}),
        "metric": {"name": "val/f1", "goal": "maximize"},
        "pruner": {"type": "none"},
        "budget": {"n_trials": 3},
        "sampler": {"type": "tpe", "seed": 0, "n_startup_trials": 2},
        "parameters": CONDITIONAL,
        **spec,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_branch_is_sampled_only_when_its_choice_is_taken(tmp_path: Path) -> None:
    sw = load_sweep(write(tmp_path))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        values = suggest(trial, sw.searched)
        study.tell(trial, 0.5)
        choice = values["optim.schedule"]
        seen.add(choice)
        if choice == "linear":
            assert set(trial.params) == {"optim.schedule", "optim.lr (linear)"} and "peft.r" not in values
            assert 1e-4 <= values["optim.lr"] <= 1e-3
        else:
            assert set(trial.params) == {"optim.schedule", "optim.lr (cosine)", "optim.warmup (cosine)"}
            assert 1e-3 <= values["optim.lr"] <= 1e-2 and values["peft.r"] == 4
        assert sw.experiment(values).optim.schedule == choice  # every trial's config validates
    assert seen == {"linear", "cosine"}
    listed = {p.describe() for p in sw.every_param}
    assert "float log [0.001, 0.01] when optim.schedule = cosine" in listed
    assert "one of 'linear', 'cosine' (each with its own sub-space)" in listed


def test_study_show_puts_each_branch_parameter_in_its_path_column() -> None:
    from rich.console import Console

    from experiments.sweep.summary import show_study

    study = optuna.create_study(study_name="cond", direction="maximize")
    study.set_user_attr("metrics", [{"name": "val/f1", "goal": "maximize"}])
    choice = optuna.distributions.CategoricalDistribution(["linear", "cosine"])
    lr = optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)
    for i, (schedule, value) in enumerate([("linear", 0.00067), ("cosine", 0.0123)]):
        study.add_trial(
            optuna.trial.create_trial(
                params={"optim.schedule": schedule, f"optim.lr ({schedule})": value},
                distributions={"optim.schedule": choice, f"optim.lr ({schedule})": lr},
                value=0.5 + i / 10,
                user_attrs={"experiment_id": f"{i:012d}"},
            )
        )
    out = io.StringIO()
    show_study(study, Console(file=out, width=120), baseline=False)
    text = out.getvalue()
    header = next(line for line in text.splitlines() if "state" in line)
    assert "optim.lr" in header and "optim.lr (" not in header, header  # one column for both branches
    rows = [line for line in text.splitlines() if "00000000000" in line]
    assert "0.00067" in rows[0] and "0.0123" in rows[1], rows


def test_a_mistake_inside_a_branch_is_reported_with_the_branch(tmp_path: Path) -> None:
    bad = {"optim.schedule": {"type": "categorical", "choices": {"linear": {"optim.lr": {"values": [-1.0]}}}}}
    with pytest.raises(ConfigError) as err:
        load_sweep(write(tmp_path, parameters=bad))
    assert any(
        "parameters.optim.lr (when optim.schedule = linear): value -1.0 is invalid" in p
        for p in err.value.problems
    )
    with pytest.raises(ConfigError, match="the grid sampler cannot search a conditional space"):
        load_sweep(write(tmp_path, sampler={"type": "grid"}))


def test_constraints_are_read_checked_and_test_metrics_refused(tmp_path: Path) -> None:
    sw = load_sweep(write(tmp_path, constraints=["model/latency_ms_b32 <= 50", "val/acc >= 0.6"]))
    lat, acc = sw.constraints
    assert (
        lat.violation({"model/latency_ms_b32": 80.0}) == 30.0
        and lat.violation({"model/latency_ms_b32": 20.0}) < 0
    )
    assert acc.violation({"val/acc": 0.7}) < 0 and acc.violation({}) == float("inf")
    with pytest.raises(ConfigError) as err:
        load_sweep(write(tmp_path, constraints=["test/f1 >= 0.5", "model/size_mb < 3", "val/nope <= 1"]))
    problems = "\n".join(err.value.problems)
    assert "constraints[0]: test/f1 would choose the model on the test split" in problems
    assert "constraints[1]: 'model/size_mb < 3' is not `metric <= bound`" in problems
    assert "constraints[2]: task 'text_classification' never records 'val/nope'" in problems


def test_enqueued_sets_run_first_once_and_infeasible_trials_are_never_best(tmp_path: Path) -> None:
    from tests.experiments.sweep.test_sweep import study_of, sweep_cli

    first = {"optim.schedule": "linear", "optim.lr": 5e-4}
    path = write(
        tmp_path, enqueue=[first], constraints=["model/latency_ms_b32 <= 1000000"], budget={"n_trials": 2}
    )
    result = sweep_cli(str(path))
    assert "enqueued 1 parameter set(s) to run first" in result.output
    study = study_of(tmp_path, "cond")
    trials = study.get_trials()
    assert trials[0].params == {"optim.schedule": "linear", "optim.lr (linear)": 5e-4}
    assert all(t.constraints["model/latency_ms_b32 <= 1000000"] < 0 for t in trials)
    assert "Cheapest within 0.01 of the best" in result.output or "also the cheapest" in result.output
    sweep_cli(str(path), "--n-trials", "2")  # a resume queues nothing twice
    assert len(study_of(tmp_path, "cond").get_trials()) == 2
    with pytest.raises(ConfigError, match=r"enqueue\[0\]: optim.warmup is not searched"):
        load_sweep(write(tmp_path, "other", enqueue=[{"optim.schedule": "linear", "optim.warmup": 0.1}]))


def test_the_cheapest_trial_within_the_tolerance_is_recommended_and_infeasible_ones_never(
    tmp_path: Path,
) -> None:
    from experiments.results.trials import recommend, recommendation_lines

    study = optuna.create_study(study_name="r", direction="maximize")
    study.set_user_attr("metrics", [{"name": "val/f1", "goal": "maximize"}])
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    rows = [
        (0.90, 80.0, 0.0),
        (0.895, 20.0, 0.0),
        (0.86, 5.0, 0.0),
        (0.95, 1.0, 3.0),
    ]  # the last breaks a constraint
    for i, (value, latency, over) in enumerate(rows):
        trial = optuna.trial.create_trial(
            params={"x": i / 10},
            distributions=dist,
            value=value,
            user_attrs={"experiment_id": f"{i:012d}", "metrics": {"model/latency_ms_b32": latency}},
            constraints={"model/size_mb <= 10": over},
        )
        study.add_trial(trial)
    best, cheapest = recommend(study, 0.01)
    assert (best.number, cheapest.number) == (0, 1)  # trial 3 is better but infeasible; 2 is too far below
    lines = recommendation_lines(study, 0.01)
    assert (
        "trial 1, experiment 000000000001: val/f1 0.8950 (-0.0050), model/latency_ms_b32 20.0000 (4.0x less)"
        in lines[1]
    )
    assert lines[-1] == "Export it: ecomlab export r --trial 1"
    assert recommend(study, 0.05)[1].number == 2
    multi = optuna.create_study(directions=["maximize", "minimize"])
    multi.set_user_attr("metrics", [{"name": "val/f1"}, {"name": "model/size_mb"}])
    with pytest.raises(EcomlabError, match="multi-objective"):
        recommend(multi, 0.01)


def test_a_warm_start_runs_the_best_fitting_sets_of_an_earlier_study(tmp_path: Path) -> None:
    from experiments.results.storage import default_storage_url, storage
    from experiments.sweep.study import warm_start

    url = default_storage_url(tmp_path / "runs")
    earlier = optuna.create_study(study_name="earlier", storage=storage(url), direction="maximize")
    dist = {
        "optim.schedule": optuna.distributions.CategoricalDistribution(["linear", "cosine"]),
        "optim.lr (linear)": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
    }
    for value, lr in ((0.9, 5e-4), (0.8, 2e-4), (0.95, 5e-2)):  # 5e-2 is outside this space's range
        earlier.add_trial(
            optuna.trial.create_trial(
                params={"optim.schedule": "linear", "optim.lr (linear)": lr}, distributions=dist, value=value
            )
        )
    sw = load_sweep(write(tmp_path, warm_start={"study": "earlier", "top_k": 3, "storage": url}))
    fits, skipped, name = warm_start(sw)
    assert name == "earlier" and skipped == 1
    assert fits == [
        {"optim.schedule": "linear", "optim.lr (linear)": 5e-4},
        {"optim.schedule": "linear", "optim.lr (linear)": 2e-4},
    ]


def one_epoch_sweep(tmp_path: Path, name: str, **spec: Any) -> Path:
    """Two one-epoch trials validated four times each (`trainer.val_check_interval: 0.25`), pruned by
    the median rule from the second trial on; `spec` adds to the file (`pruner` keys merge)."""
    base = tiny_config(
        data={"batch_size": 4}, trainer={"max_epochs": 1, "val_check_interval": 0.25, "patience": 8}
    )
    pruner = {"type": "median", "n_startup_trials": 1, "n_warmup_steps": 0, **spec.pop("pruner", {})}
    return write(
        tmp_path,
        name,
        base=base,
        budget={"n_trials": 2},
        parameters={"optim.lr": {"values": [1e-9, 0.9]}},
        pruner=pruner,
        sampler={"type": "random", "seed": 0},
        **spec,
    )


def calm_then_diverging(tmp_path: Path, path: Path, name: str) -> optuna.Study:
    """Run the sweep with a trial that barely moves (it completes, every validation reported) and then
    one that diverges (its loss passes the first's, so it is pruned inside epoch 0)."""
    from experiments.sweep.study import open_study
    from tests.experiments.sweep.test_sweep import study_of, sweep_cli

    pre = open_study(load_sweep(path), tmp_path / "runs", sampling=False)[0]
    pre.enqueue_trial({"optim.lr": 1e-9})
    pre.enqueue_trial({"optim.lr": 0.9})
    sweep_cli(str(path))
    return study_of(tmp_path, name)


def test_validations_inside_an_epoch_are_reports_and_a_one_epoch_trial_is_pruned_mid_epoch(
    tmp_path: Path,
) -> None:
    """Four validations an epoch (`trainer.val_check_interval: 0.25`): each is a report to the pruner,
    so a one-epoch trial that diverges is stopped inside its only epoch."""
    path = one_epoch_sweep(tmp_path, "inside", metric={"name": "val/loss", "goal": "minimize"})
    done, pruned = calm_then_diverging(tmp_path, path, "inside").get_trials()
    assert done.state.name == "COMPLETE" and sorted(done.intermediate_values) == [0, 1, 2, 3]
    assert pruned.state.name == "PRUNED" and max(pruned.intermediate_values) < 3


def test_a_study_of_val_f1_can_be_pruned_on_val_loss_which_is_reported_negated(tmp_path: Path) -> None:
    """`pruner.metric: val/loss` under a maximised val/f1: the pruner compares -val/loss at each
    validation (Optuna's pruners compare in the study's direction), the objective stays val/f1, and the
    tables say which metric a pruned trial's value is."""
    import csv

    from rich.console import Console

    from experiments.results.display import fmt_value
    from experiments.results.tracking import objective_values
    from experiments.sweep.summary import show_study

    path = one_epoch_sweep(tmp_path, "byloss", pruner={"metric": "val/loss"})
    sw = load_sweep(path)
    assert (sw.spec.pruner.goal, sw.report_sign, sw.reported) == ("minimize", -1.0, "-val/loss")
    study = calm_then_diverging(tmp_path, path, "byloss")
    done, pruned = study.get_trials()
    assert done.user_attrs["reported"] == pruned.user_attrs["reported"] == "-val/loss"
    assert done.state.name == "COMPLETE" and sorted(done.intermediate_values) == [0, 1, 2, 3]
    assert pruned.state.name == "PRUNED" and max(pruned.intermediate_values) == 0
    with (tmp_path / "runs" / done.user_attrs["experiment_id"] / "metrics.csv").open() as f:
        losses = [float(r["val/loss"]) for r in csv.DictReader(f) if r.get("val/loss")]
    assert [-done.intermediate_values[s] for s in range(4)] == pytest.approx(losses[:4])
    assert 0 <= done.value <= 1  # the objective is still val/f1
    # Optuna keeps a pruned trial's last report as its value: here -val/loss, never shown as val/f1
    assert pruned.value == pruned.intermediate_values[max(pruned.intermediate_values)] < 0
    assert objective_values(pruned, 1) == [None] and objective_values(done, 1) == [done.value]
    out = io.StringIO()
    show_study(study, Console(file=out, width=250), baseline=False)
    last_loss = -pruned.intermediate_values[max(pruned.intermediate_values)]
    assert f"PRUNED after 1 validation (val/loss {fmt_value(last_loss)})" in out.getvalue()


def test_the_pruning_metric_is_checked_and_part_of_the_study(tmp_path: Path) -> None:
    from experiments.sweep.study import check_unchanged, open_study

    bad = write(tmp_path, "bad", pruner={"type": "hyperband", "metric": "val/auc", "goal": "maximize"})
    with pytest.raises(ConfigError) as exc:
        load_sweep(bad)
    assert any(
        "pruner.metric: 'val/auc' is not a metric the text_classification task logs" in p
        for p in exc.value.problems
    )
    lone = write(tmp_path, "lone", pruner={"type": "hyperband", "goal": "minimize"})
    with pytest.raises(ConfigError, match="pruner.goal: it is the goal of pruner.metric"):
        load_sweep(lone)
    assert (
        load_sweep(write(tmp_path, "acc", pruner={"type": "hyperband", "metric": "val/acc"})).report_sign
        == 1.0
    )
    itself = load_sweep(write(tmp_path, "f1", pruner={"type": "hyperband", "metric": "val/f1"}))
    assert itself.spec.pruner.metric is None and itself.report_sign == 1.0  # the objective: the default
    backwards = write(tmp_path, "back", pruner={"type": "hyperband", "metric": "val/f1", "goal": "minimize"})
    with pytest.raises(ConfigError, match="pruner.goal: val/f1 is the objective, whose goal is maximize"):
        load_sweep(backwards)
    final = write(
        tmp_path, "final", metric={"name": "val/f1_best", "goal": "maximize"}, pruner={"type": "hyperband"}
    )
    with pytest.raises(ConfigError, match="'val/f1_best' is not one; name one in pruner.metric"):
        load_sweep(final)
    on_loss = write(
        tmp_path,
        "onloss",
        metric={"name": "val/f1_best", "goal": "maximize"},
        pruner={"type": "hyperband", "metric": "val/loss"},
    )
    assert load_sweep(on_loss).epoch_monitor() == "val/loss"
    before = load_sweep(write(tmp_path, "same", pruner={"type": "hyperband"}))
    study = open_study(before, tmp_path / "runs", sampling=False)[0]
    check_unchanged(study, before)
    after = load_sweep(write(tmp_path, "same", pruner={"type": "hyperband", "metric": "val/loss"}))
    with pytest.raises(
        EcomlabError, match=r"the pruner compared the objective, now -val/loss \(pruner.metric\)"
    ):
        check_unchanged(study, after)


def test_validations_inside_an_epoch_can_use_a_seeded_subset_and_the_last_one_all_of_val() -> None:
    from types import SimpleNamespace

    from datamodules.split_loaders import ValSubset

    def trainer(last_batch: bool, fn: str = "fit") -> SimpleNamespace:
        progress = SimpleNamespace(is_last_batch=last_batch)
        return SimpleNamespace(
            sanity_checking=False,
            state=SimpleNamespace(fn=fn),
            world_size=1,
            global_rank=0,
            fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress)),
        )

    dm = SimpleNamespace(trainer=trainer(last_batch=False))
    sampler = ValSubset(40, 0.25, seed=3, dm=dm)
    inside = list(sampler)
    assert len(inside) == 10 and inside == list(ValSubset(40, 0.25, seed=3, dm=dm))  # fixed by the seed
    dm.trainer = trainer(last_batch=True)  # the epoch's last validation: all of val
    assert list(sampler) == list(range(40))
    dm.trainer = trainer(last_batch=False, fn="validate")  # an evaluation after training: all of it
    assert len(sampler) == 40
    with pytest.raises(ConfigError, match="eval.val_subset: only validations inside an epoch use the subset"):
        from experiments.config import validate

        validate(tiny_config(eval={"val_subset": 0.5}))


def test_a_sweep_tests_only_its_best_trial_once_at_the_end(tmp_path: Path) -> None:
    import json

    from experiments.run.reproduce import reproduce
    from tests.experiments.sweep.test_sweep import study_of, sweep_cli

    path = write(
        tmp_path,
        "once",
        budget={"n_trials": 2},
        pruner={"type": "none"},
        parameters={"optim.lr": {"values": [1e-4, 3e-3]}},
        sampler={"type": "grid"},
    )
    result = sweep_cli(str(path))
    study = study_of(tmp_path, "once")
    best = study.best_trial
    other = next(t for t in study.get_trials() if t.number != best.number)
    records = tmp_path / "runs"
    best_metrics = json.loads((records / best.user_attrs["experiment_id"] / "metrics.json").read_text())
    other_metrics = json.loads((records / other.user_attrs["experiment_id"] / "metrics.json").read_text())
    assert not any(k.startswith("test/") for k in other_metrics)  # never tested: the test split untouched
    assert not any(k.startswith("test/") for k in best.user_attrs["metrics"])
    assert "test/f1" in best_metrics and "val/threshold" in best_metrics  # tested once, at the end
    assert study.user_attrs["final_test"][str(best.number)]["test/f1"] == best_metrics["test/f1"]
    assert f"tested {best.user_attrs['experiment_id']} once" in result.output
    assert f"best trial {best.number}: test/f1" in result.output  # beside the baseline
    manifest = json.loads((records / other.user_attrs["experiment_id"] / "manifest.json").read_text())
    assert manifest["test"].startswith("deferred")
    assert reproduce(other.user_attrs["experiment_id"], records).identical  # without a test, as it ran
