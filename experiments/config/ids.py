"""Experiment ids: a 12-digit hash of what a run computes, stable when the config gains fields.

The rule (documented in docs/extending.md, "Adding a knob"):

- the keys that existed when ids were first issued (schema 1, frozen below) are hashed as they
  are, exactly as the first id function did, so every id ever written stays the same;
- a key added since is hashed only when its value differs from its field's default. A new knob
  whose default keeps the old behaviour therefore leaves every existing id alone, and a config that
  turns it on gets a new id;
- `task` and `data.dataset` are always in; `tracking` never is (where a run is logged does not
  change what it computes).

A new knob's default must be its pydantic `Field` default (not one injected by a validator), and a
schema-1 key must never be renamed or removed: both would change ids. `tests/experiments/
test_experiment_id.py` pins the ids of every shipped config and sweep base and of a fixture record.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

# Groups that do not change what a run computes.
NON_RESULT_GROUPS = ("tracking",)

# Schema 1: the leaf keys of a resolved config when ids were first issued. Frozen; never edit.
_SCHEMA1_COMMON = (
    "task",
    "seed",
    "model.backbone",
    "model.hidden_dropout",
    "model.attention_dropout",
    "model.classifier_dropout",
    "model.freeze_layers",
    "model.trust_remote_code",
    "model.tiny.layers",
    "model.tiny.hidden",
    "model.tiny.heads",
    "model.tiny.vocab_size",
    "peft.r",
    "peft.alpha",
    "peft.dropout",
    "peft.target_modules",
    "optim.lr",
    "optim.weight_decay",
    "optim.warmup",
    "optim.schedule",
    "optim.grad_clip",
    "prune.ratio",
    "prune.epochs",
    "trainer.max_epochs",
    "trainer.patience",
    "trainer.monitor",
    "trainer.mode",
    "trainer.limit_train_batches",
    "trainer.limit_val_batches",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.precision",
    "trainer.deterministic",
    "trainer.threads",
    "trainer.save_weights",
)
_SCHEMA1_DATA_COMMON = (
    "dataset",
    "max_length",
    "batch_size",
    "eval_batch_size",
    "subsample",
    "val_fraction",
    "test_fraction",
    "split_seed",
    "drop_duplicates",
    "drop_conflicts",
    "num_workers",
)
_SCHEMA1_DATA = {
    "dangdang_reviews": (),
    "womens_clothing_reviews": ("target", "text_fields"),
    "text_file": ("path", "format", "text_columns", "label_column", "labels", "split_column"),
    "electronics_products": ("text_fields",),
    "banking77": ("path", "hub_id"),
    "fake_reviews": ("path", "with_category"),
    "electronics_prices": ("log_target", "text_fields"),
    "pc_prices": ("log_target",),
    "open_bandit": ("policies", "campaigns", "split", "negative_sampling"),
}
_SCHEMA1_TASK_GROUPS = {
    "price_regression": ("head.text_dim", "head.hidden", "head.dropout"),
    "click_through": ("ctr.embedding_dim", "ctr.hidden", "ctr.dropout", "ctr.pos_weight"),
}
ALWAYS_HASHED = frozenset({"task", "data.dataset"})


def schema1_keys(task: str, dataset: str) -> frozenset[str]:
    """The keys hashed as they are for this task and dataset (only `task` and `data.dataset` for a
    data set added after schema 1: it has no old ids to keep)."""
    if dataset not in _SCHEMA1_DATA:
        return ALWAYS_HASHED
    data = (*_SCHEMA1_DATA_COMMON, *_SCHEMA1_DATA[dataset])
    return frozenset((*_SCHEMA1_COMMON, *(f"data.{k}" for k in data), *_SCHEMA1_TASK_GROUPS.get(task, ())))


def _field_default(model: BaseModel, name: str) -> Any:
    info = type(model).model_fields[name]
    if info.is_required():
        return _REQUIRED
    return to_jsonable_python(info.get_default(call_default_factory=True))


_REQUIRED = object()  # a required field has no default, so its value is always hashed


def _hashed(node: dict[str, Any], model: BaseModel, prefix: str, keep: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in node.items():
        path = prefix + name
        child = getattr(model, name, None)
        if isinstance(value, dict) and isinstance(child, BaseModel):
            sub = _hashed(value, child, path + ".", keep)
            # a group that is entirely new and entirely at its defaults is not there at all
            if sub or any(k.startswith(path + ".") for k in keep):
                out[name] = sub
        elif path in keep or value != _field_default(model, name):
            out[name] = value
    return out


def hashed_config(cfg: BaseModel) -> dict[str, Any]:
    """What the id hashes: the resolved config without `tracking`, new keys only off their default."""
    data = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in NON_RESULT_GROUPS}
    keep = schema1_keys(data["task"], data["data"]["dataset"]) | ALWAYS_HASHED
    return _hashed(data, cfg, "", keep)


def experiment_id(cfg: BaseModel) -> str:
    """Short stable hash of what the run computes: same config, same id (see the module docstring)."""
    blob = json.dumps(hashed_config(cfg), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
