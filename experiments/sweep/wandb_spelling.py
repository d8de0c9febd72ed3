"""W&B's sweep spelling, read into the native one: its distributions become the nearest Optuna
ones (with a note where that is not exact), its nested `parameters` become dot-paths, and its
top-level keys (`method`, `early_terminate`, `run_cap`, `program`, `command`, a missing
`metric.goal`) become the sampler, the pruner and the budget of the sweep file."""

from __future__ import annotations

import math
from typing import Any

# W&B's distributions -> the nearest Optuna one. `min`/`max` of log_uniform, q_log_uniform and
# inv_log_uniform are natural-log bounds (W&B's convention); the `_values` variants take the values.
WANDB_DISTRIBUTIONS = (
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
)
_NO_LOG_STEP = "q rounding dropped (Optuna samples a log range or a stepped one, not both)"


def from_wandb(
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
    if dist in (
        "int_uniform",
        "uniform",
        "q_uniform",
        "log_uniform",
        "log_uniform_values",
        "q_log_uniform",
        "q_log_uniform_values",
        "inv_log_uniform",
        "inv_log_uniform_values",
    ) and (lo is None or hi is None):
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
            _NO_LOG_STEP if dist.startswith("q_") else None
        )
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
        return {
            "type": "float",
            "low": math.exp(mu - 3 * sigma),
            "high": math.exp(mu + 3 * sigma),
            "log": True,
        }, (note + ("; " + _NO_LOG_STEP if dist == "q_log_normal" else ""))
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


SAMPLER_OF_METHOD = {"random": "random", "grid": "grid", "bayes": "tpe"}


def is_wandb_file(spec: Any) -> bool:
    """A file with W&B's `method` or `program` follows W&B's defaults (a metric is minimised)."""
    return spec.method is not None or spec.program is not None


def ignored_keys(spec: Any) -> list[str]:
    """Notes for W&B keys that have no meaning here."""
    why = {
        "program": "trials call train(cfg) in the worker, not a script",
        "command": "trials call train(cfg) in the worker, not a command line",
    }
    return [f"{key}: ignored ({reason})" for key, reason in why.items() if getattr(spec, key) is not None]


def pruner_of_early_terminate(pruner: Any, et: Any, problems: list[str], notes: list[str]) -> Any:
    """W&B's Hyperband (`early_terminate`) as the file's `pruner` (a copy with type hyperband)."""
    if pruner.type not in (None, "hyperband"):
        problems.append("early_terminate: conflicts with pruner.type; give one of them")
    min_iter = et.min_iter
    if min_iter is None and et.max_iter is not None and et.s is not None:
        min_iter = max(1, et.max_iter // et.eta**et.s)  # W&B: max_iter with s brackets
    elif et.s is not None:
        notes.append(
            "early_terminate.s: ignored beside min_iter (Optuna's Hyperband builds its brackets from "
            "min_resource, max_resource and eta)"
        )
    if et.strict:
        notes.append("early_terminate.strict: ignored (Optuna's Hyperband has no strict mode)")
    update = {
        "type": "hyperband",
        "min_resource": min_iter or pruner.min_resource,
        "max_resource": et.max_iter or pruner.max_resource,
        "reduction_factor": et.eta,
    }
    return pruner.model_copy(update=update)
