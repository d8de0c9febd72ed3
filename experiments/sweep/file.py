"""The sweep file: one typed model (`SweepFile`), every key declared once with its description.

`load_sweep` reads a file into a `Sweep`: the model with W&B's spellings resolved into its native
keys (`sweep.wandb_spelling`), the base experiment validated once, the parameters read
(`sweep.space`), and every mistake reported before trial 0, all at once, with its location. The key
reference in `sweeps/README.md` is generated from this model (`ecomlab config --sweep`); a test fails
when the two drift apart.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from experiments.config.files import load_yaml, set_values
from experiments.config.registry import TASKS
from experiments.config.schema import ExperimentConfig, format_error, validate
from experiments.core.errors import ConfigError
from experiments.sweep import wandb_spelling
from experiments.sweep.space import Param, parse_param

# Final metrics every task's run record has besides val/* and test/*: multi-objective targets.
MODEL_METRICS = (
    "model/trainable_params",
    "model/total_params",
    "model/size_mb",
    "model/sparsity",
    "model/latency_ms",
    "model/latency_ms_b32",
)
# The searched parameters that would make a worker's K rank processes disagree on how many there are.
DEVICE_KEYS = ("trainer.devices", "trainer.num_nodes", "trainer.strategy")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricSpec(_Strict):
    name: str = Field(..., description="Metric from the run record, e.g. val/f1 or model/trainable_params.")
    goal: Literal["maximize", "minimize"] | None = Field(
        None, description="Direction of the search (default maximize; minimize in a W&B-style file, as W&B)."
    )
    target: float | None = Field(
        None, description="W&B: once a finished trial reaches it, no new trial starts (single objective)."
    )


class SamplerSpec(_Strict):
    type: Literal["tpe", "random", "gp", "cmaes", "nsga2", "grid"] | None = Field(
        None, description="Optuna sampler (default tpe; nsga2 when multi-objective)."
    )
    seed: int = Field(0, description="Sampler seed.")
    n_startup_trials: int | None = Field(None, ge=0, description="Random trials before TPE/GP/CMA-ES model.")


class PrunerSpec(_Strict):
    type: Literal["hyperband", "median", "successive_halving", "none"] | None = Field(
        None, description="Optuna pruner (default hyperband; none when multi-objective)."
    )
    min_resource: int = Field(
        1,
        ge=1,
        description="Reports (one a validation, one an epoch by default; one a fold under cross-validation) "
        "before a trial can be pruned; with hyperband or successive_halving named, it must be below the "
        "trials' most reports (else nothing is ever pruned).",
    )
    max_resource: int | Literal["auto"] = Field(
        "auto",
        description="Hyperband: the most reports of a trial (validations; folds under cross-validation).",
    )
    reduction_factor: int = Field(3, ge=2, description="Hyperband / successive halving: eta.")
    n_startup_trials: int = Field(2, ge=0, description="Median: trials that are never pruned.")
    n_warmup_steps: int = Field(
        0, ge=0, description="Median: reports (validations, or folds) before pruning applies."
    )
    metric: str | None = Field(
        None,
        description="The val/ metric the pruner compares at each validation (default: the objective), e.g. "
        "val/loss to tell apart trials whose val/f1 ties (all at the majority class); part of the study.",
    )
    goal: Literal["maximize", "minimize"] | None = Field(
        None,
        description="Whether pruner.metric should go up or down (default: minimize for loss, rmse, mae, mape, "
        "logloss and ne, else maximize); against the objective's goal it is reported negated.",
    )


class BudgetSpec(_Strict):
    n_trials: int | None = Field(20, ge=1, description="Finished (complete or pruned) trials to reach.")
    timeout: float | None = Field(None, gt=0, description="Stop starting new trials after this many seconds.")


class FaultSpec(_Strict):
    max_retries: int = Field(
        2,
        ge=0,
        description="Re-runs of a trial whose worker died (the monitor that sees it die fails the trial at "
        "once and queues it again; for a machine that died with its monitor, the storage heartbeat does).",
    )
    crash_loop: int = Field(
        5,
        ge=1,
        description="A dead worker is restarted for as long as the study makes progress; one that dies this "
        "many times in a row with no trial of the study finishing in between is not started again.",
    )
    heartbeat_interval: int = Field(10, ge=1, description="Seconds between a running trial's heartbeats.")
    grace_period: int | None = Field(
        None,
        ge=2,
        description="Seconds without heartbeat before a trial is failed (default 3x the interval).",
    )
    rank_timeout: int = Field(
        300,
        ge=10,
        description="Trials on K devices: seconds a rank waits in a collective for the others "
        "before it gives up (bounds a hung rank; a rank that dies is noticed within a second).",
    )


class ArtifactSpec(_Strict):
    store: str | None = Field(
        None,
        description="Optuna artifact store for each trial's run record: a folder every machine "
        "mounts (FileSystemArtifactStore) or s3://bucket (Boto3ArtifactStore); --artifacts overrides.",
    )
    weights: bool = Field(False, description="Upload model.safetensors too (large).")


class WarmStartSpec(_Strict):
    """An earlier study whose best parameter sets run first (those that fit this search space)."""

    study: str = Field(..., description="The earlier study's name.")
    top_k: int = Field(5, ge=1, le=100, description="How many of its best trials.")
    storage: str | None = Field(None, description="Its storage URL, when it is not this study's.")


class EarlyTerminate(_Strict):
    """W&B spelling of Hyperband (`early_terminate: {type: hyperband, min_iter: 1, eta: 3}`)."""

    type: Literal["hyperband"] = Field(..., description="W&B: hyperband.")
    min_iter: int | None = Field(None, ge=1, description="W&B: pruner.min_resource.")
    max_iter: int | None = Field(None, ge=1, description="W&B: pruner.max_resource.")
    eta: int = Field(3, ge=2, description="W&B: pruner.reduction_factor.")
    s: int | None = Field(None, description="W&B: brackets; with max_iter, min_resource = max_iter / eta^s.")
    strict: bool | None = Field(None, description="W&B: ignored with a note.")


class SweepFile(_Strict):
    """A sweep file. W&B's keys (`method`, `early_terminate`, `run_cap`, `program`, `command`) are
    accepted and, once read, resolved into the native ones (`sampler`, `pruner`, `budget`)."""

    name: str | None = Field(None, description="Study name (default: the file name).")
    description: str | None = Field(None, description="Free text.")
    base: str | dict[str, Any] = Field(
        ..., description="Experiment config: a path (relative to this file) or inline."
    )
    metric: MetricSpec | None = Field(None, description="The objective (one metric).")
    metrics: list[MetricSpec] | None = Field(
        None, min_length=2, description="Several objectives (NSGA-II by default, no pruning)."
    )
    sampler: SamplerSpec = Field(default_factory=SamplerSpec, description="How trials are sampled.")
    pruner: PrunerSpec = Field(default_factory=PrunerSpec, description="How weak trials are stopped.")
    budget: BudgetSpec = Field(default_factory=BudgetSpec, description="When the study is done.")
    storage: str | None = Field(
        None,
        description="Optuna storage URL: postgresql://user:pass@host/db, mysql+pymysql://user:pass@host/db "
        "(default: sqlite under the runs folder); --storage and $ECOMLAB_STORAGE override it.",
    )
    faults: FaultSpec = Field(default_factory=FaultSpec, description="What happens when workers die.")
    artifacts: ArtifactSpec = Field(
        default_factory=ArtifactSpec, description="Run records every machine reads."
    )
    enqueue: list[dict[str, Any]] | None = Field(
        None,
        description="Parameter sets to run first, each {dot.path: value} over the searched parameters "
        "(the base experiment's own values as trial 0 is good practice); enqueued once per study.",
    )
    warm_start: WarmStartSpec | None = Field(
        None, description="Run the best parameter sets of an earlier study first, those that fit this space."
    )
    constraints: list[str] | None = Field(
        None,
        description="Conditions a good trial meets, each `metric <= bound` or `metric >= bound` over its run "
        "record's metrics (model/latency_ms_b32 <= 50); the best trial is the best feasible one.",
    )
    parameters: dict[str, Any] = Field(
        ...,
        min_length=1,
        description="dot.path -> its search space (the keys below), or a plain value that pins the key "
        "(a pinned value is base config).",
    )
    # W&B spellings
    method: Literal["bayes", "random", "grid"] | None = Field(
        None, description="W&B: bayes (TPE), random or grid; the same as sampler.type."
    )
    early_terminate: EarlyTerminate | None = Field(None, description="W&B: Hyperband; the same as pruner.")
    program: str | None = Field(None, description="W&B key; ignored (trials run train(cfg)).")
    command: list[Any] | None = Field(None, description="W&B key; ignored.")
    run_cap: int | None = Field(None, ge=1, description="W&B: the most trials; the same as budget.n_trials.")
    project: str | None = Field(None, description="W&B project for the trials.")
    entity: str | None = Field(None, description="W&B entity for the trials.")


@dataclass(frozen=True)
class Constraint:
    """`metric <= bound` or `metric >= bound`: Optuna's constraint value is how far a trial is over."""

    text: str
    metric: str
    op: str
    bound: float

    def violation(self, metrics: dict[str, Any]) -> float:
        """<= 0 when the trial meets it; +inf when its record has no such metric."""
        v = metrics.get(self.metric)
        if not isinstance(v, (int, float)) or v != v:
            return float("inf")
        return float(v) - self.bound if self.op == "<=" else self.bound - float(v)


CONSTRAINT = re.compile(r"^\s*([\w/.\-]+)\s*(<=|>=)\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")


@dataclass
class Sweep:
    """A sweep file read and checked: what `ecomlab sweep` runs.

    Args:
        spec: the file, with W&B's keys resolved into `metrics` (each with its goal), `sampler.type`,
            `pruner` and `budget`.
        source: the file.
        task: the base experiment's task.
        base: the base experiment with the pinned `parameters` set (a pinned value is base config).
        params: every parameter, pinned ones included (what `--dry-run` shows).
        notes: W&B keys ignored or approximated, one line each.
        test_every_trial: test every trial's model (`--test-every-trial`); by default a sweep tests
            its best trials once, at its end (`experiments.run.final_test`).
    """

    spec: SweepFile
    source: Path
    task: str
    base: dict[str, Any]
    params: list[Param]
    notes: list[str] = field(default_factory=list)
    test_every_trial: bool = False  # `--test-every-trial`: else the test split is touched once, at the end

    @property
    def name(self) -> str:
        return self.spec.name or self.source.stem

    @property
    def objectives(self) -> list[MetricSpec]:
        return list(self.spec.metrics or [])

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        return [m.goal for m in self.objectives]

    @property
    def searched(self) -> list[Param]:
        """The parameters trials sample (a conditional one brings its branches along)."""
        return [p for p in self.params if p.searched]

    @property
    def every_param(self) -> list[Param]:
        """Every parameter, each branch's of a conditional one included (what `--dry-run` lists)."""
        return [q for p in self.params for q in p.flat()]

    @property
    def constraints(self) -> list[Constraint]:
        return [read_constraint(c) for c in self.spec.constraints or []]

    @property
    def conditional(self) -> bool:
        return any(p.branches for p in self.params)

    def experiment(self, values: dict[str, Any]) -> ExperimentConfig:
        """The experiment a trial runs: the base with the trial's values set, tracked in the study's
        W&B group, early-stopped and checkpointed on the first objective when the task logs it every
        epoch."""
        raw = set_values(self.base, values)
        tracking = raw.setdefault("tracking", {})
        tracking["group"] = self.name
        tracking["job_type"] = "sweep"
        tracking["tags"] = sorted({*tracking.get("tags", []), f"study:{self.name}"})
        if self.spec.project:
            tracking["project"] = self.spec.project
        if self.spec.entity:
            tracking["entity"] = self.spec.entity
        first = self.objectives[0]
        if first.name in per_epoch_metrics(self.task):
            trainer = raw.setdefault("trainer", {})
            trainer["monitor"] = first.name
            trainer["mode"] = "max" if first.goal == "maximize" else "min"
        return validate(raw)

    @cached_property
    def base_experiment(self) -> ExperimentConfig:
        """The experiment of a trial with no searched value: built once per process and carried."""
        return self.experiment({})

    def epoch_monitor(self) -> str | None:
        """The metric a trial reports at each validation (to the pruner and for the learning curves),
        or None: `pruner.metric`, else the objective. Optuna takes intermediate values for one
        objective only; with pruner none they still draw the dashboard's curves (NopPruner never stops
        a trial)."""
        if self.spec.pruner.metric is not None:
            return self.spec.pruner.metric
        first = self.objectives[0].name
        return first if not self.multi_objective and first in per_epoch_metrics(self.task) else None

    @property
    def report_sign(self) -> float:
        """-1 when `pruner.metric` goes the other way from the objective: Optuna's pruners compare
        reports in the study's direction, so such a metric is reported negated (-val/loss)."""
        pr = self.spec.pruner
        return -1.0 if pr.metric is not None and pr.goal != self.objectives[0].goal else 1.0

    @property
    def reported(self) -> str | None:
        """What the intermediate values are, as the learning-curve figure labels them."""
        monitor = self.epoch_monitor()
        return None if monitor is None else ("-" if self.report_sign < 0 else "") + monitor


# The per-validation metrics that go down when a model gets better (every task's others go up).
LOWER_IS_BETTER = ("loss", "rmse", "mae", "mape", "logloss", "ne")


def per_epoch_metrics(task: str) -> set[str]:
    """What a task logs on val every epoch; not final-only metrics such as val/f1_best."""
    return {f"val/{m}" for m in TASKS[task].metrics}


def allowed_metrics(task: str) -> list[str]:
    """The metrics a sweep of this task may target: val, test, final and model metrics."""
    spec = TASKS[task]
    return [
        *(f"val/{m}" for m in spec.metrics),
        *(f"test/{m}" for m in spec.metrics),
        *spec.final_metrics,
        *MODEL_METRICS,
    ]


# --- reading a file: one function per part, each appending its problems ---------------------------------
def _read_base(spec: SweepFile, path: Path, problems: list[str]) -> dict[str, Any]:
    """The base experiment as written (a path relative to the file, or inline)."""
    if not isinstance(spec.base, str):
        return copy.deepcopy(spec.base)
    base_path = Path(spec.base) if Path(spec.base).is_absolute() else path.parent / spec.base
    if not base_path.is_file():
        problems.append(f"base: experiment config not found: {base_path}")
        return {}
    try:
        return load_yaml(base_path)
    except ConfigError as exc:
        problems.extend(f"base: {p}" for p in exc.problems)
        return {}


def _validate_base(base: dict[str, Any], problems: list[str]) -> ExperimentConfig | None:
    if not base:
        return None
    try:
        return validate(base)
    except ConfigError as exc:
        problems.extend(f"base.{p}" if not p.startswith("top level") else f"base: {p}" for p in exc.problems)
        return None


def _resolve_objectives(spec: SweepFile, task: str, problems: list[str], notes: list[str]) -> None:
    """`metric` or `metrics` into `spec.metrics`, each with its goal, each a metric the task records."""
    if spec.metric and spec.metrics:
        problems.append("metric / metrics: give one of them, not both")
    wandb_file = wandb_spelling.is_wandb_file(spec)
    given = spec.metrics or ([spec.metric] if spec.metric else [])
    if wandb_file and any(m.goal is None for m in given):
        notes.append("metric.goal: not given, so minimize (W&B's default)")
    default_goal = "minimize" if wandb_file else "maximize"
    objectives = [m if m.goal else m.model_copy(update={"goal": default_goal}) for m in given]
    if not objectives:
        problems.append("metric: required (e.g. {name: val/f1, goal: maximize})")
    if any(m.target is not None for m in objectives) and len(objectives) > 1:
        problems.append(
            "metrics[].target: a target stops a single-objective sweep; drop it or use one metric"
        )
    allowed = allowed_metrics(task)
    for i, m in enumerate(objectives):
        where = f"metrics[{i}]" if spec.metrics else "metric"
        if m.name.startswith("test/"):
            problems.append(
                f"{where}.name: {m.name} would choose the model on the test split, which must stay untouched until "
                f"the search is over; use {m.name.replace('test/', 'val/', 1)}"
            )
        elif m.name not in allowed:
            problems.append(
                f"{where}.name: task {task!r} never logs {m.name!r}; choose one of {', '.join(allowed)}"
            )
    spec.metrics, spec.metric = objectives, None


def _resolve_sampler(spec: SweepFile) -> None:
    chosen = spec.sampler.type or wandb_spelling.SAMPLER_OF_METHOD.get(spec.method or "")
    multi = len(spec.metrics or []) > 1
    spec.sampler = spec.sampler.model_copy(update={"type": chosen or ("nsga2" if multi else "tpe")})


def _resolve_pruner(spec: SweepFile, task: str, problems: list[str], notes: list[str]) -> bool:
    """`pruner` (or W&B's `early_terminate`) with its type (and its metric's goal) decided; True when
    the file named one."""
    if spec.early_terminate is not None:
        spec.pruner = wandb_spelling.pruner_of_early_terminate(
            spec.pruner, spec.early_terminate, problems, notes
        )
    named = spec.pruner.type is not None
    multi = len(spec.metrics or []) > 1
    if not named:
        spec.pruner = spec.pruner.model_copy(update={"type": "none" if multi else "hyperband"})
    kind, objectives = spec.pruner.type, spec.metrics or []
    if multi and kind != "none":
        problems.append("pruner.type: Optuna cannot prune multi-objective studies; use none")
    first = objectives[0] if objectives else None
    if first is not None and spec.pruner.metric == first.name:  # the objective itself: the default
        if spec.pruner.goal not in (None, first.goal):
            problems.append(f"pruner.goal: {first.name} is the objective, whose goal is {first.goal}")
        spec.pruner = spec.pruner.model_copy(update={"metric": None, "goal": None})
    if (
        kind != "none"
        and not multi
        and first is not None
        and spec.pruner.metric is None
        and first.name in allowed_metrics(task)  # (one it never logs is reported as metric.name)
        and first.name not in per_epoch_metrics(task)
    ):
        problems.append(
            f"pruner.type: pruning needs a metric logged at every validation, and {first.name!r} is not one; "
            "name one in pruner.metric (val/loss), or use pruner.type: none"
        )
    if (metric := spec.pruner.metric) is not None:
        logged = sorted(per_epoch_metrics(task))
        if metric not in logged:
            problems.append(
                f"pruner.metric: {metric!r} is not a metric the {task} task logs at every validation; one of "
                f"{', '.join(logged)}"
            )
        elif kind == "none" or multi:
            problems.append(
                "pruner.metric: there is nothing to prune on (pruner.type none, or several objectives)"
            )
        if spec.pruner.goal is None:
            low = metric.rsplit("/", 1)[-1] in LOWER_IS_BETTER
            spec.pruner = spec.pruner.model_copy(update={"goal": "minimize" if low else "maximize"})
    elif spec.pruner.goal is not None:
        problems.append("pruner.goal: it is the goal of pruner.metric, which is not given")
    return named


def _resolve_budget(spec: SweepFile, raw: dict[str, Any], problems: list[str]) -> None:
    """W&B's `run_cap` into `budget.n_trials`."""
    if spec.run_cap is not None:
        if "n_trials" in (raw.get("budget") or {}):
            problems.append("run_cap: W&B's budget and budget.n_trials are the same; give one of them")
        spec.budget = spec.budget.model_copy(update={"n_trials": spec.run_cap})
    if not spec.budget.n_trials and not spec.budget.timeout:
        problems.append("budget: give n_trials and/or timeout")


def read_constraint(text: str) -> Constraint:
    m = CONSTRAINT.match(text)
    assert m, text  # checked when the file was read
    return Constraint(text.strip(), m.group(1), m.group(2), float(m.group(3)))


def _check_constraints(spec: SweepFile, task: str, problems: list[str]) -> None:
    allowed = allowed_metrics(task)
    for i, text in enumerate(spec.constraints or []):
        m = CONSTRAINT.match(text)
        where = f"constraints[{i}]"
        if m is None:
            problems.append(f"{where}: {text!r} is not `metric <= bound` or `metric >= bound`")
        elif m.group(1).startswith("test/"):
            problems.append(
                f"{where}: {m.group(1)} would choose the model on the test split, which must stay untouched until the "
                f"search is over; use {m.group(1).replace('test/', 'val/', 1)}"
            )
        elif m.group(1) not in allowed:
            problems.append(
                f"{where}: task {task!r} never records {m.group(1)!r}; choose one of {', '.join(allowed)}"
            )


def optuna_params(params: list[Param], values: dict[str, Any]) -> dict[str, Any]:
    """{dot.path: value} of a parameter set as Optuna names it (a branch's parameters carry the
    choice); raises KeyError naming a key the search space does not sample."""
    out: dict[str, Any] = {}
    todo = [p for p in params if p.searched]
    seen = set()
    while todo:
        p = todo.pop(0)
        if p.path in values and p.searched:
            out[p.optuna_name] = values[p.path]
            seen.add(p.path)
            for choice, sub in p.branches:
                if choice == values[p.path]:
                    todo.extend(q for q in sub if q.searched)
    if extra := sorted(set(values) - seen):
        raise KeyError(", ".join(extra))
    return out


def _check_enqueued(spec: SweepFile, params: list[Param], base: dict[str, Any], problems: list[str]) -> None:
    """Each `enqueue` entry names searched parameters only, and the experiment config takes it."""
    for i, entry in enumerate(spec.enqueue or []):
        where = f"enqueue[{i}]"
        try:
            optuna_params(params, entry)
        except KeyError as exc:
            problems.append(f"{where}: {exc.args[0]} is not searched by this file's parameters")
            continue
        try:
            validate(set_values(base, entry))
        except ConfigError as exc:
            problems.extend(f"{where}: {p}" for p in exc.problems)


def _read_parameters(spec: SweepFile, problems: list[str]) -> list[Param]:
    params = []
    for key, value in wandb_spelling.flatten_parameters(spec.parameters).items():
        if not all(part.isidentifier() for part in key.split(".")):
            problems.append(f"parameters.{key}: not a dot-path of config keys")
            continue
        p = parse_param(key, value, f"parameters.{key}", problems)
        if p is not None:
            params.append(p)
    if spec.sampler.type == "grid":
        for p in params:
            if p.kind in ("float", "int") and not (p.step or p.kind == "int"):
                problems.append(f"parameters.{p.path}: the grid sampler needs choices or a step")
            if p.branches:
                problems.append(
                    f"parameters.{p.path}: the grid sampler cannot search a conditional space; use tpe"
                )
    return params


def _probe_parameters(params: list[Param], base: dict[str, Any], problems: list[str]) -> None:
    """Each pinned value, bound and choice against the experiment config (a branch's with its choice)."""
    for p in (q for top in params for q in top.flat()):
        where = {p.when[0]: p.when[1]} if p.when else {}
        for v in p.probe_values():
            try:
                validate(set_values(base, {**where, p.path: v}))
            except ConfigError as exc:
                for msg in exc.problems:
                    unknown = msg.startswith(p.path + ": unknown key") or msg.startswith(
                        p.path.rsplit(".", 1)[0] + ": unknown"
                    )
                    label = f"parameters.{p.path}" + (f" (when {p.when[0]} = {p.when[1]})" if p.when else "")
                    if unknown:
                        problems.append(f"{label}: the experiment config has no key {p.path!r}")
                    else:
                        problems.append(f"{label}: value {v!r} is invalid: {msg}")
                break


def _most_epochs(params: list[Param], base_epochs: int) -> tuple[int, str]:
    """The most epochs a trial trains: a `trainer.max_epochs` pinned or searched in `parameters`
    wins over the base config's."""
    for p in params:
        if p.path != "trainer.max_epochs":
            continue
        try:
            if p.kind == "fixed":
                n = int(p.value)
                return n, f"the trials' {n} epochs (parameters.trainer.max_epochs)"
            n = int(max(p.choices)) if p.kind == "categorical" else int(p.high or 0)
        except (TypeError, ValueError):
            break  # an invalid value is reported with the other parameter problems
        return n, f"the most epochs a trial trains ({n}, parameters.trainer.max_epochs)"
    return base_epochs, f"the trials' {base_epochs} epochs"


def _check_pruning_reach(
    spec: SweepFile, params: list[Param], base_cfg: ExperimentConfig, problems: list[str]
) -> None:
    """A first rung at or past a trial's last report never prunes (reports are steps 0..R-1: one a
    validation, so R = epochs x validations an epoch)."""
    kind, pruner = spec.pruner.type, spec.pruner
    last, what = _most_epochs(params, base_cfg.trainer.max_epochs)
    vci = base_cfg.trainer.val_check_interval
    if isinstance(vci, int) and not isinstance(vci, bool):
        return  # validations every N batches: how many an epoch depends on the data; Hyperband reads it
    if isinstance(vci, float) and vci < 1.0 and base_cfg.eval.folds <= 1:
        each = max(1, round(1 / vci))
        last, what = last * each, f"the trials' {last * each} validations ({each} an epoch)"
    if kind == "hyperband" and isinstance(pruner.max_resource, int) and pruner.max_resource < last:
        last, what = pruner.max_resource, f"pruner.max_resource ({pruner.max_resource})"
    if pruner.min_resource >= last:
        problems.append(
            f"pruner.min_resource: {pruner.min_resource} is not below {what}, so {kind} would never stop a "
            "trial; lower it or give the trials more epochs"
        )


def _unique(problems: list[str]) -> list[str]:
    seen: set[str] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; ConfigError lists every problem with its location."""
    path = Path(path)
    raw = load_yaml(path)
    try:
        spec = SweepFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([format_error(e) for e in exc.errors()], str(path)) from None
    problems: list[str] = []
    notes = wandb_spelling.ignored_keys(spec)
    base = _read_base(spec, path, problems)
    base_cfg = _validate_base(base, problems)
    task = base_cfg.task if base_cfg else next(iter(TASKS))  # the default task when the base is broken
    _resolve_objectives(spec, task, problems, notes)
    _resolve_sampler(spec)
    pruner_named = _resolve_pruner(spec, task, problems, notes)
    _resolve_budget(spec, raw, problems)
    _check_constraints(spec, task, problems)
    params = _read_parameters(spec, problems)
    if base_cfg is not None:
        _probe_parameters(params, base, problems)
        _check_enqueued(spec, params, base, problems)
        # a pinned value is base config (devices included): every trial, and the base id, has it
        base = set_values(base, {p.path: p.value for p in params if not p.searched})
        if pruner_named and spec.pruner.type in ("hyperband", "successive_halving"):
            _check_pruning_reach(spec, params, base_cfg, problems)
    elif not problems:
        problems.append("base: the experiment config is empty")
    if problems:
        raise ConfigError(_unique(problems), str(path))
    return Sweep(spec=spec, source=path, task=task, base=base, params=params, notes=notes)


# Keys that a listing of the file's settings leaves out: the base and the parameters have their own
# views, and W&B's keys are already resolved into the native ones.
_NOT_SETTINGS = ("base", "parameters", "metric", "method", "early_terminate", "program", "command", "run_cap")


def _leaves(model: BaseModel, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out.extend(_leaves(value, f"{prefix}{name}."))
        else:
            out.append((f"{prefix}{name}", value))
    return out


def settings(sw: Sweep) -> list[tuple[str, Any]]:
    """Every resolved key of the file but the base and the parameters, as (dot-path, value): what
    `ecomlab sweep --dry-run` prints, derived from the model (a new key shows up by itself)."""
    rows = []
    for key, value in _leaves(sw.spec):
        if key.split(".")[0] in _NOT_SETTINGS:
            continue
        if key == "metrics":
            value = ", ".join(f"{m.name} ({m.goal})" for m in value or [])
        rows.append((key, value))
    return rows


def key_reference(model: type[BaseModel] = SweepFile, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, description) of every key a sweep file may have, the parameters' own keys
    under `parameters.<dot.path>`: the reference `ecomlab config --sweep` prints and
    `sweeps/README.md` holds."""
    from experiments.sweep.space import ParameterSpec

    rows: list[tuple[str, str, str]] = []
    for name, f in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _model_of(f.annotation)
        if sub is not None:
            doc = (sub.__doc__ or "").strip().splitlines()
            rows.append((key, "", f.description or (doc[0] if doc else "")))
            rows.extend(key_reference(sub, key + "." if name != "metrics" else key + "[]."))
            continue
        default = "required" if f.is_required() else repr(f.get_default(call_default_factory=True))
        rows.append((key, default, f.description or ""))
        if name == "parameters" and model is SweepFile:
            rows.extend(key_reference(ParameterSpec, "parameters.<dot.path>."))
    return rows


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside `X`, `X | None` or `list[X] | None`, if there is one."""
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def markdown_table(rows: list[tuple[str, str, str]]) -> str:
    """(key, default, meaning) rows as the Markdown table the docs hold."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for key, default, desc in rows:
        cells = [f"`{key}`", f"`{default}`" if default else "", desc.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
