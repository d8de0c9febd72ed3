"""Typed experiment config: small groups (data, model, peft, optim, prune, compress, distill,
adversarial, augment, eval, trainer, tracking), built from the registry: each data set's config class, each task's spec and group.

Validation reports every problem at once with its key path (``optim.lr: must be > 0 (got -1)``);
unknown keys are errors. This module imports only pydantic and yaml so that ``ecomlab --help`` stays fast.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model, model_validator

from datamodules.augment import AugmentConfig
from experiments.core.config_group import Group
from experiments.core.errors import ConfigError
from experiments.experiment_id import experiment_id  # noqa: F401  (re-exported: callers take it from here)
from experiments.registry import DATASETS, TASKS
from lightning_modules.knobs import (
    AdversarialConfig,
    CompressConfig,
    DistillConfig,
    ModelConfig,
    OptimConfig,
    PeftConfig,
    PruneConfig,
)

# Top-level groups that only some tasks have (`head`, `ctr`); absent (None) groups stay out of the
# resolved config, so adding one never changes the experiment id of an existing config.
OPTIONAL_GROUPS = {spec.group: spec for spec in TASKS.values() if spec.group}
DATASET_NAMES = tuple(DATASETS)
DataConfig = Annotated[Union[tuple(DATASETS.values())], Field(discriminator="dataset")]  # noqa: UP007


class TrainerConfig(Group):
    max_epochs: int = Field(3, ge=1, description="Upper bound on epochs.")
    patience: int = Field(2, ge=1, description="Early stopping: epochs without improvement of `monitor`.")
    monitor: str = Field("val/f1", description="Metric for early stopping and best-checkpoint selection.")
    mode: Literal["max", "min"] = Field("max", description="Whether `monitor` should go up or down.")
    limit_train_batches: int | float | None = Field(None, gt=0, description="Cap training batches per epoch.")
    limit_val_batches: int | float | None = Field(None, gt=0, description="Cap validation batches.")
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = Field(
        "auto", description="Lightning accelerator."
    )
    devices: int = Field(
        1, ge=1, description="Devices per run (per node); the global batch is batch_size x devices."
    )
    strategy: Literal["auto", "ddp", "ddp_spawn", "fsdp"] = Field(
        "auto", description="Lightning strategy for several devices (auto: DDP when devices > 1)."
    )
    num_nodes: int = Field(1, ge=1, description="Machines one run spans (torchrun / SLURM set the ranks).")
    accumulate_grad_batches: int = Field(1, ge=1, description="Batches whose gradients add up to one step.")
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = Field(
        "32-true", description="Lightning precision."
    )
    deterministic: bool = Field(True, description="torch deterministic algorithms (bit-identical on CPU).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's default).")
    save_weights: bool = Field(True, description="Write the best weights as safetensors into the run record.")


class EvalConfig(Group):
    folds: int = Field(
        1, ge=1, le=20,
        description="k-fold cross-validation: stratified folds of train+val (test held out), one model per fold, "
        "metrics the mean (and _std); 1: the single split.",
    )  # fmt: skip


class TrackingConfig(Group):
    mode: Literal["auto", "online", "offline", "disabled"] = Field(
        "auto", description="W&B mode; auto = online with credentials, else offline into the run record."
    )
    project: str = Field("ecomlab", min_length=1, description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team or user).")
    tags: list[str] = Field([], description="Extra W&B tags (dataset and task are always added).")
    group: str | None = Field(None, description="W&B group (sweeps set it to the study name).")
    job_type: str | None = Field(None, description="W&B job type.")


class _ExperimentBase(Group):
    """One fine-tuning experiment; its experiment id is a hash of what it computes (not `tracking`)."""

    task: Literal[tuple(TASKS)] = Field(  # type: ignore[valid-type]
        "text_classification", description="LightningModule to train (lightning_modules/<task>/)."
    )
    seed: int = Field(42, description="Seed for model init, dropout and data order.")
    data: DataConfig = Field(..., description="Dataset and how to clean, split and tokenise it.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    peft: PeftConfig = Field(default_factory=PeftConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    compress: CompressConfig = Field(default_factory=CompressConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    adversarial: AdversarialConfig = Field(default_factory=AdversarialConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: Any) -> Any:
        """The task defaults from the dataset when only one task takes it; the task's own monitor
        and group are filled in unless given."""
        if not isinstance(raw, dict):
            return raw
        data = raw.get("data")
        if "task" not in raw and isinstance(data, dict) and data.get("dataset") in DATASETS:
            fits = DATASETS[data["dataset"]].tasks
            if len(fits) == 1:
                raw = {**raw, "task": fits[0]}
        spec = TASKS.get(raw.get("task", "text_classification"))
        if spec is None:
            return raw
        raw = dict(raw)
        trainer = raw.get("trainer") or {}
        if isinstance(trainer, dict) and "monitor" not in trainer:
            raw["trainer"] = {"monitor": spec.monitor, "mode": spec.mode, **trainer}
        if spec.group and raw.get(spec.group) is None:
            raw[spec.group] = {}
        return raw

    @model_validator(mode="after")
    def _task_fits(self) -> _ExperimentBase:
        problems = []
        spec = TASKS[self.task]
        takes = [n for n, d in DATASETS.items() if self.task in d.tasks]
        if self.task not in type(self.data).tasks:
            problems.append(f"data.dataset: task {self.task!r} cannot train on {self.data.dataset!r} "
                            f"(it takes {', '.join(takes)}; {self.data.dataset!r} is for "
                            f"task {', '.join(type(self.data).tasks)})")  # fmt: skip
        for group, owner in OPTIONAL_GROUPS.items():
            if owner.name != self.task and getattr(self, group) is not None:
                problems.append(f"{group}: only task {owner.name!r} uses it (task is {self.task!r})")
        if not spec.text_encoder and self.peft.r:
            problems.append(f"peft.r: task {self.task!r} has no transformer to put LoRA adapters on; use 0")
        if not spec.text_encoder and self.prune.ffn:
            problems.append(f"prune.ffn: task {self.task!r} has no transformer FFN to prune; use 0 (prune.ratio "
                            "prunes its MLP)")  # fmt: skip
        if not spec.text_encoder and self.prune.heads:
            problems.append(f"prune.heads: task {self.task!r} has no attention heads to prune; use 0")
        if self.model.layers is not None and (not spec.text_encoder or self.model.backbone == "tiny"):
            problems.append("model.layers: " + (f"task {self.task!r} has no transformer" if not spec.text_encoder
                            else "the `tiny` backbone is built with model.tiny.layers; use that"))  # fmt: skip
        if self.distill.teacher is not None and not spec.class_logits:
            with_logits = ", ".join(n for n, s in TASKS.items() if s.class_logits)
            problems.append(f"distill.teacher: task {self.task!r} has no class logits to learn soft labels from "
                            f"(distillation is for {with_logits})")  # fmt: skip
        if not spec.text_encoder:
            no_text = f"task {self.task!r} has no text encoder"
            if self.adversarial.method != "none":
                problems.append(
                    f"adversarial.method: {no_text} whose word embeddings could be perturbed; use none"
                )
            if self.optim.layer_decay != 1.0:
                problems.append(f"optim.layer_decay: {no_text} with layers to decay the lr over; use 1.0")
            if self.augment.method != "none":
                problems.append(f"augment.method: {no_text}; its rows are not texts to augment; use none")
            if self.eval.folds > 1:
                problems.append(f"eval.folds: task {self.task!r} splits its log by the data set's own rule; "
                                "cross-validation is for the text tasks; use 1")  # fmt: skip
        if self.eval.folds > 1 and self.trainer.devices * self.trainer.num_nodes > 1:
            problems.append("eval.folds: cross-validation trains its folds on one device; use trainer.devices 1 "
                            "(it is for small data sets, where several devices do not pay)")  # fmt: skip
        if self.eval.folds > 1 and self.distill.teacher is not None:
            problems.append("eval.folds: each fold trains on another part of train+val than the teacher's train "
                            "split, so distill.teacher cannot give its soft labels; use one or the other")  # fmt: skip
        if self.augment.method == "eda" and getattr(type(self.data), "language", None) == "zh":
            problems.append(f"augment.method: eda edits space-separated words, and {self.data.dataset!r} is "
                            "Chinese (no spaces); use char")  # fmt: skip
        if self.optim.label_smoothing and not spec.class_logits:
            problems.append(f"optim.label_smoothing: task {self.task!r} has no class logits to smooth the labels "
                            "of (its loss is not a softmax cross-entropy); use 0")  # fmt: skip
        t = self.trainer
        if self.compress.int8 and (t.accelerator in ("gpu", "cuda", "mps") or t.devices * t.num_nodes > 1):
            problems.append("compress.int8: dynamic int8 runs on one CPU device; use trainer.accelerator cpu "
                            "and trainer.devices 1")  # fmt: skip
        allowed = [f"val/{m}" for m in spec.metrics]
        if self.trainer.monitor not in allowed:
            problems.append(f"trainer.monitor: task {self.task!r} never logs {self.trainer.monitor!r}; "
                            f"choose one of {', '.join(allowed)}")  # fmt: skip
        if problems:
            raise ValueError("; ".join(problems))
        return self


# The task groups and `tracking` come after the shared groups, in registry order.
ExperimentConfig = create_model(
    "ExperimentConfig",
    __base__=_ExperimentBase,
    __module__=__name__,
    **{group: (spec.group_config | None, Field(None, description=f"{spec.group_config.__doc__} ({spec.name} only)."))
       for group, spec in OPTIONAL_GROUPS.items()},
    tracking=(TrackingConfig, Field(default_factory=TrackingConfig)),
)  # fmt: skip


def _format_error(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err["loc"]]
    # pydantic puts the union tag ("womens_clothing_reviews") into the location; users never type it.
    if len(loc) >= 2 and loc[0] == "data" and loc[1] in DATASET_NAMES:
        loc = [loc[0], *loc[2:]]
    key = ".".join(loc)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if (
        "input" in err
        and err["type"] not in ("missing", "extra_forbidden")
        and not isinstance(err["input"], dict)
    ):
        msg += f" (got {err['input']!r})"
    if key and not msg.startswith(key):
        return f"{key}: {msg}"
    return msg


def validate(raw: dict[str, Any], source: str | None = None) -> ExperimentConfig:
    """Validate a config dict; raise ConfigError listing every problem with its key path."""
    if not isinstance(raw, dict):
        raise ConfigError([f"top level must be a mapping (got {type(raw).__name__})"], source)
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_format_error(e) for e in exc.errors()], source) from None


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


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML config (or the bundled quickstart when `path` is None), apply --set, validate."""
    if path is None:
        path = default_config_path()
    raw = apply_overrides(load_yaml(path), overrides or [])
    return validate(raw, source=str(path))


def default_config_path() -> Path:
    return Path(__file__).parent / "defaults" / "quickstart.yaml"


def resolved(cfg: ExperimentConfig) -> dict[str, Any]:
    """The full config with every default filled in, as plain JSON-able data."""
    data = cfg.model_dump(mode="json")
    return {k: v for k, v in data.items() if not (v is None and k in OPTIONAL_GROUPS)}


def field_help(model: type[BaseModel] = ExperimentConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key path, default, description) for every leaf field: the `ecomlab config` help text."""
    rows: list[tuple[str, str, str]] = []
    for name, f in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = f.annotation
        if name in OPTIONAL_GROUPS:
            ann = next(a for a in get_args(ann) if a is not type(None))
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(field_help(ann, key + "."))
        elif name == "data" and issubclass(model, _ExperimentBase):
            for sub in DATASETS.values():
                for r in field_help(sub, "data."):
                    if r not in rows:
                        rows.append(r)
        else:
            default = "required" if f.is_required() else repr(f.get_default(call_default_factory=True))
            rows.append((key, default, f.description or ""))
    return rows
