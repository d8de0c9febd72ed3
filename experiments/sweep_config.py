"""Typed sweep files: a base experiment, metric(s), sampler, pruner, budget, storage and parameters.

Parameters are dot-paths into the experiment config. Both spellings are accepted:
    native:  optim.lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
    W&B:     optim.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-3}
Every mistake is reported before the first trial, all at once, with its location.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from experiments.config import _format_error, load_yaml, set_values
from experiments.core.errors import ConfigError
from experiments.registry import TASKS

# Final metrics every task's run record has besides val/* and test/*: multi-objective targets.
MODEL_METRICS = ("model/trainable_params", "model/total_params", "model/size_mb", "model/sparsity",
                 "model/latency_ms", "model/latency_ms_b32")  # fmt: skip


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
    min_resource: int = Field(1, ge=1, description="Epochs before a trial can be pruned.")
    max_resource: int | Literal["auto"] = Field("auto", description="Hyperband: the most epochs of a trial.")
    reduction_factor: int = Field(3, ge=2, description="Hyperband / successive halving: eta.")
    n_startup_trials: int = Field(2, ge=0, description="Median: trials that are never pruned.")
    n_warmup_steps: int = Field(0, ge=0, description="Median: epochs before pruning applies.")


class BudgetSpec(_Strict):
    n_trials: int | None = Field(20, ge=1, description="Finished (complete or pruned) trials to reach.")
    timeout: float | None = Field(None, gt=0, description="Stop starting new trials after this many seconds.")


class FaultSpec(_Strict):
    max_retries: int = Field(2, ge=0, description="Re-runs of a trial whose worker died.")
    heartbeat_interval: int = Field(10, ge=1, description="Seconds between a running trial's heartbeats.")
    grace_period: int | None = Field(
        None, ge=2, description="Seconds without heartbeat before a trial is failed."
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


class EarlyTerminate(_Strict):
    """W&B spelling of Hyperband (`early_terminate: {type: hyperband, min_iter: 1, eta: 3}`)."""

    type: Literal["hyperband"]
    min_iter: int | None = Field(None, ge=1)
    max_iter: int | None = Field(None, ge=1)
    eta: int = Field(3, ge=2)
    s: int | None = None
    strict: bool | None = None


class SweepFile(_Strict):
    name: str | None = Field(None, description="Study name (default: the file name).")
    description: str | None = None
    base: str | dict[str, Any] = Field(
        ..., description="Experiment config: a path (relative to this file) or inline."
    )
    metric: MetricSpec | None = None
    metrics: list[MetricSpec] | None = Field(None, min_length=2, description="Several objectives.")
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    storage: str | None = Field(
        None, description="Optuna storage URL (default: sqlite under the runs folder)."
    )
    faults: FaultSpec = Field(default_factory=FaultSpec)
    artifacts: ArtifactSpec = Field(default_factory=ArtifactSpec)
    parameters: dict[str, Any] = Field(..., min_length=1, description="dot.path -> search space.")
    # W&B spellings
    method: Literal["bayes", "random", "grid"] | None = None
    early_terminate: EarlyTerminate | None = None
    program: str | None = Field(None, description="W&B key; ignored (trials run train(cfg)).")
    command: list[Any] | None = Field(None, description="W&B key; ignored.")
    run_cap: int | None = Field(None, ge=1, description="W&B: the most trials; the same as budget.n_trials.")
    project: str | None = Field(None, description="W&B project for the trials.")
    entity: str | None = Field(None, description="W&B entity for the trials.")


@dataclass(frozen=True)
class Param:
    """One searched (or fixed) parameter, after both spellings are normalised."""

    path: str
    kind: Literal["float", "int", "categorical", "fixed"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None
    note: str | None = None  # how a W&B distribution was approximated, if it was

    def describe(self) -> str:
        if self.kind == "fixed":
            text = f"= {self.value!r}"
        elif self.kind == "categorical":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            scale = " log" if self.log else ""
            step = f" step {self.step:g}" if self.step else ""
            text = f"{self.kind}{scale} [{self.low:g}, {self.high:g}]{step}"
        return text + (f" (approximated: {self.note})" if self.note else "")

    def probe_values(self) -> list[Any]:
        """Values to try against the experiment config before the first trial."""
        if self.kind == "fixed":
            return [self.value]
        if self.kind == "categorical":
            return list(self.choices)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]


@dataclass
class Sweep:
    """A validated sweep: what `ecomlab sweep` runs."""

    name: str
    source: Path
    base: dict[str, Any]
    objectives: list[MetricSpec]
    sampler: str
    sampler_seed: int
    sampler_startup: int | None
    pruner: PrunerSpec
    pruner_type: str
    budget: BudgetSpec
    storage: str | None
    faults: FaultSpec
    params: list[Param]
    artifacts: ArtifactSpec = field(default_factory=ArtifactSpec)
    project: str | None = None
    entity: str | None = None
    base_task: str = "text_classification"  # the validated base config's task (checked once, in load_sweep)
    notes: list[str] = field(default_factory=list)  # W&B keys ignored or approximated, one line each

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        return [m.goal for m in self.objectives]

    def trial_config(self, values: dict[str, Any]) -> dict[str, Any]:
        """The base experiment with the trial's values set at their dot-paths."""
        fixed = {p.path: p.value for p in self.params if p.kind == "fixed"}
        return set_values(self.base, {**fixed, **values})


# W&B's distributions -> the nearest Optuna one. `min`/`max` of log_uniform, q_log_uniform and
# inv_log_uniform are natural-log bounds (W&B's convention); the `_values` variants take the values.
_WANDB_DISTRIBUTIONS = (
    "constant", "categorical", "int_uniform", "uniform", "q_uniform", "log_uniform", "log_uniform_values",
    "q_log_uniform", "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values", "normal", "q_normal",
    "log_normal", "q_log_normal", "beta", "q_beta",
)  # fmt: skip
_NO_LOG_STEP = "q rounding dropped (Optuna samples a log range or a stepped one, not both)"


def _from_wandb(
    dist: str, spec: dict[str, Any], where: str, problems: list[str]
) -> tuple[dict[str, Any], str | None] | None:
    """A W&B distribution as a native spec (type, low, high, log, step) and what was approximated."""
    if dist in ("constant", "categorical"):
        problems.append(f"{where}: distribution {dist} needs {'value' if dist == 'constant' else 'values'}")
        return None
    q = spec.get("q", 1)
    nums = {k: spec[k] for k in ("min", "max", "mu", "sigma", "a", "b", "q") if k in spec}
    if bad := [k for k, v in nums.items() if not isinstance(v, (int, float)) or isinstance(v, bool)]:
        problems.append(f"{where}.{bad[0]}: must be a number (got {nums[bad[0]]!r})")
        return None
    lo, hi = spec.get("min"), spec.get("max")
    if dist in ("int_uniform", "uniform", "q_uniform", "log_uniform", "log_uniform_values", "q_log_uniform",
                "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values") and (lo is None or hi is None):  # fmt: skip
        problems.append(f"{where}: distribution {dist} needs min and max")
        return None
    if dist == "int_uniform":
        return {"type": "int", "low": lo, "high": hi}, None
    if dist == "uniform":
        return {"type": "float", "low": lo, "high": hi}, None
    if dist == "q_uniform":
        note = (
            None
            if float(lo / q).is_integer()
            else f"Optuna's grid starts at min ({lo:g}), W&B rounds to multiples of q ({q:g})"
        )
        return {"type": "float", "low": lo, "high": hi, "step": q}, note
    if dist in ("log_uniform", "q_log_uniform"):
        return {"type": "float", "low": math.exp(lo), "high": math.exp(hi), "log": True}, (
            _NO_LOG_STEP if dist.startswith("q_") else None)  # fmt: skip
    if dist in ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"):
        return {"type": "float", "low": lo, "high": hi, "log": True}, (
            _NO_LOG_STEP if dist.startswith("q_") else None
        )
    if dist == "inv_log_uniform":  # log(1/X) uniform on [min, max]: X log-uniform on [e^-max, e^-min]
        return {"type": "float", "low": math.exp(-hi), "high": math.exp(-lo), "log": True}, None
    mu, sigma = spec.get("mu", 0.0), spec.get("sigma", 1.0)
    if dist in ("normal", "q_normal", "log_normal", "q_log_normal") and sigma <= 0:
        problems.append(f"{where}.sigma: must be > 0 (got {sigma!r})")
        return None
    if dist in ("normal", "q_normal"):
        native = {"type": "float", "low": mu - 3 * sigma, "high": mu + 3 * sigma}
        if dist == "q_normal":
            native["step"] = q
        return native, "uniform on mu +- 3 sigma (Optuna has no normal distribution)"
    if dist in ("log_normal", "q_log_normal"):
        note = "log-uniform on exp(mu +- 3 sigma) (Optuna has no log-normal distribution)"
        return {"type": "float", "low": math.exp(mu - 3 * sigma), "high": math.exp(mu + 3 * sigma), "log": True}, (
            note + ("; " + _NO_LOG_STEP if dist == "q_log_normal" else ""))  # fmt: skip
    # beta, q_beta: on [0, 1]
    a, b = spec.get("a", 1.0), spec.get("b", 1.0)
    native = {"type": "float", "low": 0.0, "high": 1.0}
    if dist == "q_beta":
        native["step"] = q
    return (
        native,
        None if a == b == 1 else f"uniform on [0, 1] (Optuna has no beta distribution; a={a:g}, b={b:g})",
    )


def flatten_parameters(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """W&B's nested parameters (`optim: {parameters: {lr: {...}}}`) as dot-paths (`optim.lr`)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict) and set(value) == {"parameters"} and isinstance(value["parameters"], dict):
            out.update(flatten_parameters(value["parameters"], f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _parse_param(path: str, spec: Any, where: str, problems: list[str]) -> Param | None:
    if not isinstance(spec, dict):
        return Param(path, "fixed", value=spec)  # `optim.lr: 1e-4` pins a value
    spec = dict(spec)
    known = {"type", "low", "high", "log", "step", "choices", "value", "values", "distribution", "min", "max",
             "q", "mu", "sigma", "a", "b", "probabilities", "description"}  # fmt: skip
    if unknown := sorted(set(spec) - known):
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}")
        return None
    dist = spec.get("distribution")
    kind = spec.get("type")
    note = None
    if dist is not None and dist not in _WANDB_DISTRIBUTIONS:
        problems.append(f"{where}.distribution: {dist!r} is not a W&B distribution; use one of "
                        f"{', '.join(_WANDB_DISTRIBUTIONS)}")  # fmt: skip
        return None
    # W&B spelling -> native
    if "value" in spec and kind is None and dist in (None, "constant"):
        return Param(path, "fixed", value=spec["value"])
    if "values" in spec and kind is None and dist in (None, "categorical"):
        kind, spec["choices"] = "categorical", spec["values"]
        if "probabilities" in spec:
            note = "probabilities ignored: Optuna draws the values without weights"
    elif dist is not None and kind is None:
        converted = _from_wandb(dist, spec, where, problems)
        if converted is None:
            return None
        native, note = converted
        spec = {**{k: v for k, v in spec.items() if k not in ("min", "max", "q")}, **native}
        kind = spec["type"]
    if "min" in spec or "max" in spec:
        spec.setdefault("low", spec.get("min"))
        spec.setdefault("high", spec.get("max"))
        if kind is None:
            both_int = all(
                isinstance(spec.get(k), int) and not isinstance(spec.get(k), bool) for k in ("min", "max")
            )
            kind = "int" if both_int else "float"
    if kind is None:
        problems.append(f"{where}: give `type` (float, int, categorical) or W&B's `values` / `distribution`")
        return None
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            problems.append(f"{where}.choices: must be a non-empty list")
            return None
        return Param(path, "categorical", choices=tuple(choices), note=note)
    if kind == "fixed":
        return Param(path, "fixed", value=spec.get("value"))
    if kind not in ("float", "int"):
        problems.append(f"{where}.type: must be float, int or categorical (got {kind!r})")
        return None
    low, high = spec.get("low"), spec.get("high")
    ok = True
    for key, v in (("low", low), ("high", high)):
        if (
            not isinstance(v, (int, float))
            or isinstance(v, bool)
            or (isinstance(v, float) and not math.isfinite(v))
        ):
            problems.append(f"{where}.{key}: must be a number (got {v!r})")
            ok = False
    if not ok:
        return None
    if kind == "int" and (low != int(low) or high != int(high)):
        problems.append(f"{where}: an int range needs whole bounds (got {low!r}, {high!r})")
        return None
    if low > high:
        problems.append(f"{where}: low/min ({low!r}) is greater than high/max ({high!r})")
        return None
    log = bool(spec.get("log", False))
    if log and low <= 0:
        problems.append(f"{where}: a log range must be above 0 (got low {low!r})")
        return None
    step = spec.get("step")
    if step is not None and (not isinstance(step, (int, float)) or step <= 0):
        problems.append(f"{where}.step: must be > 0 (got {step!r})")
        return None
    if step is not None and log:
        problems.append(f"{where}: step and log cannot be combined (Optuna samples either)")
        return None
    return Param(path, kind, low=low, high=high, log=log, step=step, note=note)


def _allowed_metrics(task: str) -> list[str]:
    spec = TASKS[task]
    return [
        *(f"val/{m}" for m in spec.metrics),
        *(f"test/{m}" for m in spec.metrics),
        *spec.final_metrics,
        *MODEL_METRICS,
    ]


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


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file; ConfigError lists every problem with its location."""
    from experiments.config import validate

    path = Path(path)
    raw = load_yaml(path)
    src = str(path)
    try:
        spec = SweepFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_format_error(e) for e in exc.errors()], src) from None

    problems: list[str] = []
    # base experiment
    if isinstance(spec.base, str):
        base_path = (path.parent / spec.base) if not Path(spec.base).is_absolute() else Path(spec.base)
        if not base_path.is_file():
            problems.append(f"base: experiment config not found: {base_path}")
            base: dict[str, Any] = {}
        else:
            try:
                base = load_yaml(base_path)
            except ConfigError as exc:
                problems.extend(f"base: {p}" for p in exc.problems)
                base = {}
    else:
        base = copy.deepcopy(spec.base)
    base_cfg = None
    if base:
        try:
            base_cfg = validate(base)
        except ConfigError as exc:
            problems.extend(
                f"base.{p}" if not p.startswith("top level") else f"base: {p}" for p in exc.problems
            )

    # objectives
    if spec.metric and spec.metrics:
        problems.append("metric / metrics: give one of them, not both")
    notes: list[str] = []
    wandb_style = spec.method is not None or spec.program is not None
    default_goal = "minimize" if wandb_style else "maximize"
    objectives = [m if m.goal else m.model_copy(update={"goal": default_goal})
                  for m in (spec.metrics or ([spec.metric] if spec.metric else []))]  # fmt: skip
    if not objectives:
        problems.append("metric: required (e.g. {name: val/f1, goal: maximize})")
    elif wandb_style and any(m.goal is None for m in (spec.metrics or [spec.metric])):
        notes.append("metric.goal: not given, so minimize (W&B's default)")
    if any(m.target is not None for m in objectives) and len(objectives) > 1:
        problems.append(
            "metrics[].target: a target stops a single-objective sweep; drop it or use one metric"
        )
    for key, why in (("program", "trials call train(cfg) in the worker, not a script"),
                     ("command", "trials call train(cfg) in the worker, not a command line")):  # fmt: skip
        if getattr(spec, key) is not None:
            notes.append(f"{key}: ignored ({why})")
    task = base_cfg.task if base_cfg else next(iter(TASKS))  # the default task when the base is broken
    allowed = _allowed_metrics(task)
    for i, m in enumerate(objectives):
        where = f"metrics[{i}]" if spec.metrics else "metric"
        if m.name not in allowed:
            problems.append(
                f"{where}.name: task {task!r} never logs {m.name!r}; choose one of {', '.join(allowed)}"
            )
    multi = len(objectives) > 1

    # sampler / pruner, including the W&B spellings
    sampler = (
        spec.sampler.type or {"random": "random", "grid": "grid", "bayes": "tpe", None: None}[spec.method]
    )
    sampler = sampler or ("nsga2" if multi else "tpe")
    pruner = spec.pruner
    pruner_type = pruner.type
    if spec.early_terminate is not None:
        if pruner.type not in (None, "hyperband"):
            problems.append("early_terminate: conflicts with pruner.type; give one of them")
        pruner_type = "hyperband"
        et = spec.early_terminate
        min_iter = et.min_iter
        if min_iter is None and et.max_iter is not None and et.s is not None:
            min_iter = max(1, et.max_iter // et.eta**et.s)  # W&B: max_iter with s brackets
        elif et.s is not None:
            notes.append("early_terminate.s: ignored beside min_iter (Optuna's Hyperband builds its brackets "
                         "from min_resource, max_resource and eta)")  # fmt: skip
        if et.strict:
            notes.append("early_terminate.strict: ignored (Optuna's Hyperband has no strict mode)")
        pruner = pruner.model_copy(update={"min_resource": min_iter or pruner.min_resource,
                                           "max_resource": et.max_iter or pruner.max_resource,
                                           "reduction_factor": et.eta})  # fmt: skip
    chosen = pruner_type is not None  # named in the file (or by early_terminate), not the default
    if pruner_type is None:
        pruner_type = "none" if multi else "hyperband"
    if multi and pruner_type != "none":
        problems.append("pruner.type: Optuna cannot prune multi-objective studies; use none")
    if pruner_type != "none" and objectives and not objectives[0].name.startswith("val/"):
        problems.append(f"pruner.type: pruning needs a per-epoch val/ metric, not {objectives[0].name!r}; "
                        "use pruner.type: none")  # fmt: skip
    budget = spec.budget
    if spec.run_cap is not None:
        if "budget" in raw and "n_trials" in (raw.get("budget") or {}):
            problems.append("run_cap: W&B's budget and budget.n_trials are the same; give one of them")
        budget = budget.model_copy(update={"n_trials": spec.run_cap})
    if not budget.n_trials and not budget.timeout:
        problems.append("budget: give n_trials and/or timeout")

    # parameters: shape, then each value against the experiment config
    params: list[Param] = []
    for key, value in flatten_parameters(spec.parameters).items():
        where = f"parameters.{key}"
        parts = key.split(".")
        if not all(p.isidentifier() for p in parts):
            problems.append(f"{where}: not a dot-path of config keys")
            continue
        p = _parse_param(key, value, where, problems)
        if p is not None:
            params.append(p)
    if sampler == "grid":
        for p in params:
            if p.kind in ("float", "int") and not (p.step or p.kind == "int"):
                problems.append(f"parameters.{p.path}: the grid sampler needs choices or a step")
    if base_cfg is not None:
        for p in params:
            for v in p.probe_values():
                try:
                    validate(set_values(base, {p.path: v}))
                except ConfigError as exc:
                    for msg in exc.problems:
                        if msg.startswith(p.path + ": unknown key") or msg.startswith(
                            p.path.rsplit(".", 1)[0] + ": unknown"
                        ):
                            problems.append(
                                f"parameters.{p.path}: the experiment config has no key {p.path!r}"
                            )
                        else:
                            problems.append(f"parameters.{p.path}: value {v!r} is invalid: {msg}")
                    break
    if chosen and pruner_type in ("hyperband", "successive_halving") and base_cfg is not None:
        # epochs are reported as steps 0..max_epochs-1; a first rung at or past the last never prunes
        last, what = _most_epochs(params, base_cfg.trainer.max_epochs)
        if pruner_type == "hyperband" and isinstance(pruner.max_resource, int) and pruner.max_resource < last:
            last, what = pruner.max_resource, f"pruner.max_resource ({pruner.max_resource})"
        if pruner.min_resource >= last:
            problems.append(f"pruner.min_resource: {pruner.min_resource} is not below {what}, so {pruner_type} "
                            "would never stop a trial; lower it or give the trials more epochs")  # fmt: skip
    if base_cfg is None and not problems:
        problems.append("base: the experiment config is empty")
    # de-duplicate while keeping order
    seen: set[str] = set()
    problems = [p for p in problems if not (p in seen or seen.add(p))]
    if problems:
        raise ConfigError(problems, src)
    return Sweep(
        name=spec.name or path.stem, source=path, base=base, objectives=list(objectives), sampler=sampler,
        sampler_seed=spec.sampler.seed, sampler_startup=spec.sampler.n_startup_trials, pruner=pruner,
        pruner_type=pruner_type, budget=budget, storage=spec.storage, faults=spec.faults, params=params,
        project=spec.project, entity=spec.entity, base_task=base_cfg.task, notes=notes,
        artifacts=spec.artifacts,
    )  # fmt: skip
