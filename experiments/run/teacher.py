"""`distill.teacher`: a finished run's logits on the train split, the soft labels a student learns.

They are computed once per teacher (its id and weights) and data fingerprint, with the teacher's own
tokenizer and `max_length` (a MiniLM teacher can teach a `tiny` student), and cached in the token
cache, so every trial of a sweep that shares the teacher reads them back. The loss that uses them is
`lightning_modules.distillation.Distillation`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.core import fingerprints, token_cache
from experiments.core.errors import ConfigError, RunRecordError
from experiments.results import run_record

# Data options that may differ between teacher and student: they do not change which examples,
# in which order, make up the train split.
LOGITS_VERSION = "teacher-logits-v1"


def _teacher(cfg: Any, runs_root: Path) -> tuple[Any, run_record.RunRecord]:
    from experiments.config.schema import validate

    teacher = cfg.distill.teacher
    try:
        rec = run_record.read(runs_root, teacher)
    except RunRecordError as exc:
        raise ConfigError(
            [
                f"distill.teacher: {exc} Train the teacher first (`ecomlab run TEACHER.yaml`) "
                "with the same runs folder."
            ]
        ) from None
    if not rec.completed:
        raise ConfigError([f"distill.teacher: run {teacher} did not complete (no metrics.json)"])
    tcfg = validate(rec.config, source=str(rec.path / "config.yaml"))
    problems = []
    if tcfg.task != cfg.task:
        problems.append(f"distill.teacher: run {teacher} is task {tcfg.task!r}, the student is {cfg.task!r}")
    own, theirs = (
        c.data.model_dump(mode="json", exclude=set(fingerprints.NOT_SPLIT_SHAPING)) for c in (cfg, tcfg)
    )
    if differ := sorted(k for k in own.keys() | theirs.keys() if own.get(k) != theirs.get(k)):
        problems.append(
            f"distill.teacher: run {teacher} was trained on other data (data.{', data.'.join(differ)} "
            "differ); the teacher must see the same train split"
        )
    if problems:
        raise ConfigError(problems)
    return tcfg, rec


def attach_teacher(cfg: Any, dm: Any, runs_root: Path, console: Console) -> dict[str, Any]:
    """Put the teacher's train-split logits into `dm`'s train split (each batch then carries
    `teacher_logits`); return what the run's manifest records about the teacher."""
    import torch

    from lightning_modules.distillation import TEACHER_LOGITS

    tcfg, rec = _teacher(cfg, runs_root)
    train = dm.splits["train"]
    key = fingerprints.fingerprint(
        LOGITS_VERSION, rec.exp_id, rec.manifest.get("weights_sha256"), dm.data_fingerprint
    )
    cached = token_cache.load(key)
    hit = cached is not None
    if cached is None:
        logits, labels = teacher_logits(tcfg, rec)
        token_cache.save(key, {"train.logits": logits, "train.labels": labels}, {"teacher": rec.exp_id})
    else:
        logits, labels = cached.tensors["train.logits"], cached.tensors["train.labels"]
    n = dm.train_originals  # augmented copies follow the originals and learn their soft labels
    if logits.shape != (n, len(dm.label_names)) or not torch.equal(labels, train.labels[:n]):
        raise ConfigError(
            [
                f"distill.teacher: run {rec.exp_id} gives logits of shape {tuple(logits.shape)} on the "
                f"train split, not in the student's order ({n} examples, "
                f"{len(dm.label_names)} classes, the same labels)"
            ]
        )
    train.extra[TEACHER_LOGITS] = logits.float().repeat(len(train) // n, 1)
    with torch.no_grad():
        agree = float((logits.argmax(1) == train.labels[:n]).float().mean())
    console.print(
        f"distillation: teacher {rec.exp_id} ({tcfg.model.backbone}), train accuracy {agree:.3f}, "
        f"logits {'from the cache' if hit else 'computed and cached'}"
    )
    return {
        "teacher": rec.exp_id,
        "backbone": tcfg.model.backbone,
        "logits_key": key,
        "cache_hit": hit,
        "teacher_train_acc": round(agree, 6),
        "teacher_metrics": {k: v for k, v in (rec.metrics or {}).items() if k in ("val/f1", "test/f1")},
    }


def teacher_logits(tcfg: Any, rec: run_record.RunRecord) -> tuple[Any, Any]:
    """The teacher's logits on its own train split (its tokenizer and max_length), in split order,
    and that split's labels (to check that the student's split is the same)."""
    import torch

    from experiments.run.build import rebuild

    tdm, teacher = rebuild(tcfg, rec)
    split = tdm.splits["train"]
    size = tcfg.data.eval_batch_size or tcfg.data.batch_size
    outs = []
    with torch.inference_mode():
        for i in range(0, len(split), size):
            batch = split.collate(list(range(i, min(i + size, len(split)))))
            outs.append(teacher.forward_batch(batch).float())
    return torch.cat(outs), split.labels.clone()
