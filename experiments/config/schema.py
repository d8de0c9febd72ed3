"""The typed experiment config: `task`, `seed`, `data` (one class per data set), one group per knob
(`registry.KNOBS`), `trainer`, the task groups (`head`, `ctr`) and `tracking`, built from the registry.

Validation reports every problem at once with its key path (`optim.lr: must be > 0 (got -1)`);
unknown keys are errors; each knob refuses what the config's task or data cannot use. This package
imports only pydantic and yaml so that `ecomlab --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, Field, ValidationError, create_model, model_validator

from experiments.config.registry import DATASETS, KNOBS, TASKS
from experiments.core.config_group import Group
from experiments.core.errors import ConfigError

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
    val_check_interval: float | int | None = Field(
        None,
        gt=0,
        description="Validate inside an epoch too: a fraction of it (0.25: four times) or every N training "
        "batches; None: once an epoch. Each validation is a report to a sweep's pruner.",
    )
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
        """The data set serves the task, the task groups belong to it, every knob can act on it, and
        the monitored metric is one the task logs."""
        problems = []
        spec = TASKS[self.task]
        if self.task not in type(self.data).tasks:
            takes = ", ".join(n for n, d in DATASETS.items() if self.task in d.tasks)
            problems.append(
                f"data.dataset: task {self.task!r} cannot train on {self.data.dataset!r} (it takes {takes}; "
                f"{self.data.dataset!r} is for task {', '.join(type(self.data).tasks)})"
            )
        for group, owner in OPTIONAL_GROUPS.items():
            if owner.name != self.task and getattr(self, group) is not None:
                problems.append(f"{group}: only task {owner.name!r} uses it (task is {self.task!r})")
        for knob in KNOBS.values():
            problems.extend(knob.problems(self, spec))
        vci = self.trainer.val_check_interval
        if isinstance(vci, float) and vci > 1:
            problems.append(
                f"trainer.val_check_interval: a fraction of an epoch is at most 1.0 (got {vci}); "
                "give a whole number of batches instead"
            )
        allowed = [f"val/{m}" for m in spec.metrics]
        if self.trainer.monitor not in allowed:
            problems.append(
                f"trainer.monitor: task {self.task!r} never logs {self.trainer.monitor!r}; "
                f"choose one of {', '.join(allowed)}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _optional_group(spec: Any) -> tuple[Any, Any]:
    description = f"{spec.group_config.__doc__} ({spec.name} only)."
    return (spec.group_config | None, Field(None, description=description))


# The knob groups in registry order, then `trainer`, the task groups and `tracking`.
ExperimentConfig = create_model(
    "ExperimentConfig",
    __base__=_ExperimentBase,
    __module__=__name__,
    **{name: (knob.config, Field(default_factory=knob.config)) for name, knob in KNOBS.items()},
    trainer=(TrainerConfig, Field(default_factory=TrainerConfig)),
    **{group: _optional_group(spec) for group, spec in OPTIONAL_GROUPS.items()},
    tracking=(TrackingConfig, Field(default_factory=TrackingConfig)),
)


def format_error(err: dict[str, Any]) -> str:
    """One pydantic error as `key.path: what is wrong (got value)`."""
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
    shows_input = err["type"] not in ("missing", "extra_forbidden") and not isinstance(err.get("input"), dict)
    if "input" in err and shows_input:
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
        raise ConfigError([format_error(e) for e in exc.errors()], source) from None


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
