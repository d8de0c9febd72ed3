"""Config files and `--set` overrides: read YAML safely, set dot-paths, load and validate."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from experiments.config.schema import ExperimentConfig, validate
from experiments.core.errors import ConfigError


def parse_override(item: str) -> tuple[list[str], Any]:
    """`optim.lr=1e-4` -> (["optim", "lr"], 1e-4); the value is read as YAML (safe_load)."""
    if "=" not in item:
        raise ConfigError([f"--set {item!r}: expected key=value"])
    key, _, value = item.partition("=")
    path = [p for p in key.strip().split(".")]
    if not all(p.isidentifier() for p in path):
        raise ConfigError([f"--set {item!r}: {key!r} is not a dot-path of config keys"])
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return path, parsed


def set_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `raw` with each dot-path in `values` set (validation happens afterwards)."""
    out = copy.deepcopy(raw)
    for key, value in values.items():
        path = key.split(".")
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return out


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with each `key.path=value` from --set applied."""
    return set_values(raw, {".".join(path): value for path, value in map(parse_override, overrides)})


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with `yaml.safe_load`; errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError([f"file not found: {p}"])
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(p)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text: {exc}"], str(p)) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"top level must be a mapping (got {type(raw).__name__})"], str(p))
    return raw


def default_config_path() -> Path:
    return Path(__file__).parent / "defaults" / "quickstart.yaml"


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML config (or the bundled quickstart when `path` is None), apply --set, validate."""
    if path is None:
        path = default_config_path()
    raw = apply_overrides(load_yaml(path), overrides or [])
    return validate(raw, source=str(path))
