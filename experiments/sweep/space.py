"""The search space: each parameter of a sweep file read into a `Param` (native or W&B spelling),
checked against the experiment config before trial 0, and sampled from an Optuna trial.

A categorical parameter may carry a sub-space per choice (a conditional space):

    model.backbone:
      type: categorical
      choices:
        minilm: {optim.lr: {type: float, low: 2.0e-5, high: 2.0e-4, log: true}}
        smollm2-135m: {optim.lr: {...}, peft.r: {type: categorical, choices: [8, 16, 32]}}

A branch's parameters are sampled only when their choice is taken, under Optuna names that carry
the choice (`optim.lr (smollm2-135m)`), so two branches may search the same key over other ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from experiments.sweep.wandb_spelling import WANDB_DISTRIBUTIONS, from_wandb


class ParameterSpec(BaseModel):
    """The keys of one parameter in `parameters:` (a plain value instead pins the key)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["float", "int", "categorical", "fixed"] | None = Field(
        None, description="float, int or categorical (native spelling)."
    )
    low: float | None = Field(None, description="Lower bound of a float or int range.")
    high: float | None = Field(None, description="Upper bound of a float or int range.")
    log: bool = Field(False, description="Sample the range on a log scale (bounds above 0).")
    step: float | None = Field(None, description="Step of a range (not with log); ints default to 1.")
    choices: list[Any] | dict[str, Any] | None = Field(
        None,
        description="The values of a categorical parameter; as a mapping, each choice with its own sub-space "
        "(dot.path -> search space, sampled only when that choice is taken).",
    )
    value: Any = Field(None, description="A pinned value (W&B `value`; the same as a plain value).")
    values: list[Any] | None = Field(None, description="W&B: the values of a categorical parameter.")
    distribution: str | None = Field(None, description="W&B distribution (see the W&B table below).")
    min: float | None = Field(None, description="W&B: lower bound (natural log for log_uniform).")
    max: float | None = Field(None, description="W&B: upper bound (natural log for log_uniform).")
    q: float | None = Field(None, description="W&B: quantisation step of a q_ distribution.")
    mu: float | None = Field(None, description="W&B: mean of a normal distribution.")
    sigma: float | None = Field(None, description="W&B: standard deviation of a normal distribution.")
    a: float | None = Field(None, description="W&B: alpha of a beta distribution.")
    b: float | None = Field(None, description="W&B: beta of a beta distribution.")
    probabilities: list[float] | None = Field(None, description="W&B: ignored with a note.")
    description: str | None = Field(None, description="Free text.")


@dataclass(frozen=True)
class Param:
    """One searched (or pinned) parameter, after both spellings are normalised."""

    path: str
    kind: Literal["float", "int", "categorical", "fixed"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None
    note: str | None = None  # how a W&B distribution was approximated, if it was
    branches: tuple[tuple[Any, tuple[Param, ...]], ...] = ()  # (choice, its sub-space) of a categorical
    name: str | None = None  # the Optuna name, when it is not the path (a branch's parameter)
    when: tuple[str, Any] | None = (
        None  # (model.backbone, minilm): the choice a branch's parameter belongs to
    )

    @property
    def optuna_name(self) -> str:
        return self.name or self.path

    def flat(self) -> list[Param]:
        """This parameter and, for a conditional one, every branch's parameters."""
        return [self, *(q for _, sub in self.branches for p in sub for q in p.flat())]

    @property
    def searched(self) -> bool:
        return self.kind != "fixed"

    def describe(self) -> str:
        if self.kind == "fixed":
            text = f"= {self.value!r}"
        elif self.kind == "categorical":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
            if any(sub for _, sub in self.branches):
                text += " (each with its own sub-space)"
        else:
            scale = " log" if self.log else ""
            step = f" step {self.step:g}" if self.step else ""
            text = f"{self.kind}{scale} [{self.low:g}, {self.high:g}]{step}"
        if self.when is not None:
            text += f" when {self.when[0]} = {self.when[1]}"
        return text + (f" (approximated: {self.note})" if self.note else "")

    def probe_values(self) -> list[Any]:
        """Values to try against the experiment config before the first trial."""
        if self.kind == "fixed":
            return [self.value]
        if self.kind == "categorical":
            return list(self.choices)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]


def _is_number(v: Any) -> bool:
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and not (isinstance(v, float) and not math.isfinite(v))
    )


def _native(
    spec: dict[str, Any], where: str, problems: list[str]
) -> tuple[dict[str, Any], str | None] | None:
    """The W&B spelling of `spec`, if it uses it, as the native one (type, low, high, log, step,
    choices), with a note on what was approximated."""
    dist, kind, note = spec.get("distribution"), spec.get("type"), None
    if dist is not None and dist not in WANDB_DISTRIBUTIONS:
        problems.append(
            f"{where}.distribution: {dist!r} is not a W&B distribution; use one of {', '.join(WANDB_DISTRIBUTIONS)}"
        )
        return None
    if "value" in spec and kind is None and dist in (None, "constant"):
        return {"type": "fixed", "value": spec["value"]}, None
    if "values" in spec and kind is None and dist in (None, "categorical"):
        if "probabilities" in spec:
            note = "probabilities ignored: Optuna draws the values without weights"
        return {**spec, "type": "categorical", "choices": spec["values"]}, note
    if dist is not None and kind is None:
        converted = from_wandb(dist, spec, where, problems)
        if converted is None:
            return None
        native, note = converted
        return {**{k: v for k, v in spec.items() if k not in ("min", "max", "q")}, **native}, note
    if "min" in spec or "max" in spec:
        spec = {**spec, "low": spec.get("low", spec.get("min")), "high": spec.get("high", spec.get("max"))}
        if kind is None:
            both_int = all(
                isinstance(spec.get(k), int) and not isinstance(spec.get(k), bool) for k in ("min", "max")
            )
            spec["type"] = "int" if both_int else "float"
    return spec, note


def _range(
    path: str, spec: dict[str, Any], where: str, note: str | None, problems: list[str]
) -> Param | None:
    kind, low, high = spec["type"], spec.get("low"), spec.get("high")
    bad = [(key, v) for key, v in (("low", low), ("high", high)) if not _is_number(v)]
    for key, v in bad:
        problems.append(f"{where}.{key}: must be a number (got {v!r})")
    if bad:
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


def parse_param(path: str, spec: Any, where: str, problems: list[str]) -> Param | None:
    """One entry of `parameters:` as a `Param`; its problems are appended to `problems`."""
    if not isinstance(spec, dict):
        return Param(path, "fixed", value=spec)  # `optim.lr: 1e-4` pins a value
    if unknown := sorted(set(spec) - set(ParameterSpec.model_fields)):
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}")
        return None
    native = _native(dict(spec), where, problems)
    if native is None:
        return None
    spec, note = native
    kind = spec.get("type")
    if kind is None:
        problems.append(f"{where}: give `type` (float, int, categorical) or W&B's `values` / `distribution`")
        return None
    if kind == "fixed":
        return Param(path, "fixed", value=spec.get("value"))
    if kind == "categorical":
        choices = spec.get("choices")
        if isinstance(choices, dict) and choices:
            return _conditional(path, choices, where, problems)
        if not isinstance(choices, list) or not choices:
            problems.append(f"{where}.choices: must be a non-empty list")
            return None
        return Param(path, "categorical", choices=tuple(choices), note=note)
    if kind not in ("float", "int"):
        problems.append(f"{where}.type: must be float, int or categorical (got {kind!r})")
        return None
    return _range(path, spec, where, note, problems)


def _conditional(path: str, choices: dict[str, Any], where: str, problems: list[str]) -> Param:
    """A categorical parameter whose choices carry their own sub-spaces."""
    branches = []
    for choice, sub in choices.items():
        if sub is not None and not isinstance(sub, dict):
            problems.append(
                f"{where}.choices.{choice}: a choice's sub-space is a mapping dot.path -> search space"
            )
            sub = None
        params = []
        for key, spec in (sub or {}).items():
            if key == path or not all(part.isidentifier() for part in key.split(".")):
                problems.append(
                    f"{where}.choices.{choice}.{key}: not a dot-path of config keys other than {path}"
                )
                continue
            p = parse_param(key, spec, f"{where}.choices.{choice}.{key}", problems)
            if p is not None:
                params.append(_in_branch(p, path, choice))
        branches.append((choice, tuple(params)))
    return Param(path, "categorical", choices=tuple(choices), branches=tuple(branches))


def _in_branch(p: Param, parent: str, choice: Any) -> Param:
    """`p` as a parameter of the branch `parent = choice` (named for Optuna with the choice)."""
    import dataclasses

    branches = tuple((c, tuple(_in_branch(q, parent, choice) for q in sub)) for c, sub in p.branches)
    return dataclasses.replace(
        p, name=f"{p.optuna_name} ({choice})", when=(parent, choice), branches=branches
    )


def grid_space(params: list[Param]) -> dict[str, list[Any]]:
    """Every value of each searched parameter, for Optuna's GridSampler."""
    space: dict[str, list[Any]] = {}
    for p in params:
        if p.kind == "categorical":
            space[p.path] = list(p.choices)
        elif p.kind in ("int", "float"):
            step = p.step or 1
            n = int(round((p.high - p.low) / step)) + 1  # type: ignore[operator]
            vals = [p.low + i * step for i in range(n)]  # type: ignore[operator]
            space[p.path] = [int(v) if p.kind == "int" else float(v) for v in vals]
    return space


def suggest(trial: Any, params: list[Param]) -> dict[str, Any]:
    """The searched parameters' values for `trial` (pinned ones are in the base experiment), and
    those of the branch each conditional choice takes (its pinned values included)."""
    values: dict[str, Any] = {}
    for p in params:
        name = p.optuna_name
        if p.kind == "float":
            values[p.path] = trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
        elif p.kind == "int":
            step = int(p.step or 1)
            values[p.path] = trial.suggest_int(name, int(p.low), int(p.high), step=step, log=p.log)  # type: ignore[arg-type]
        elif p.kind == "categorical":
            values[p.path] = trial.suggest_categorical(name, list(p.choices))
        elif p.when is not None:  # a value a branch pins: set only when the branch is taken
            values[p.path] = p.value
        for choice, sub in p.branches:
            if values.get(p.path) == choice:
                values.update(suggest(trial, list(sub)))
    return values
