"""`distill.*`: a student learns a finished run's soft labels, computed once and cached; a teacher
that cannot teach this student is refused with the key that says why."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experiments.config import experiment_id, validate
from experiments.core import token_cache
from experiments.core.errors import ConfigError
from experiments.results import run_record
from experiments.run.train import train
from tests.conftest import tiny_config

SMALLER = {"tiny": {"layers": 1, "hidden": 32, "heads": 2, "vocab_size": 300}}


def student(**distill: object) -> dict:
    return tiny_config(model=SMALLER, trainer={"max_epochs": 1}, distill=distill)


def test_a_student_learns_from_a_finished_runs_cached_soft_labels(tmp_path: Path) -> None:
    from experiments.run.reproduce import reproduce
    from experiments.run.teacher import teacher_logits

    runs = tmp_path / "runs"
    teacher = validate(tiny_config(trainer={"max_epochs": 2}))
    train(teacher)
    tid = experiment_id(teacher)
    plain = train(validate(student()))
    distilled_cfg = validate(student(teacher=tid, alpha=0.9))
    assert experiment_id(distilled_cfg) != experiment_id(validate(student()))
    distilled = train(distilled_cfg)
    assert distilled["val/loss"] != plain["val/loss"]  # the soft labels changed what was learnt
    rec = run_record.read(runs, experiment_id(distilled_cfg))
    info = rec.manifest["distill"]
    assert info["teacher"] == tid and info["cache_hit"] is False
    # the cached soft labels are the teacher's own outputs on its train split, in split order
    logits, labels = teacher_logits(teacher, run_record.read(runs, tid))
    cached = token_cache.load(info["logits_key"])
    assert cached is not None and torch.equal(cached.tensors["train.logits"], logits)
    assert torch.equal(cached.tensors["train.labels"], labels)
    # another student of the same teacher reads them back instead of running the teacher again; its
    # augmented train copies learn the soft labels of their originals
    other = {**student(teacher=tid, alpha=0.5, temperature=4.0), "augment": {"method": "eda", "copies": 1}}
    train(validate(other))
    again = run_record.read(runs, experiment_id(validate(other)))
    assert again.manifest["distill"]["cache_hit"] is True
    assert again.manifest["data"]["splits"]["train"] == 2 * rec.manifest["data"]["splits"]["train"]
    assert reproduce(experiment_id(distilled_cfg), runs).identical


def test_a_teacher_that_cannot_teach_this_student_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"distill\.teacher: No run record 0123456789ab"):
        train(validate(student(teacher="0123456789ab")))
    other_split = validate(tiny_config(trainer={"max_epochs": 1}, data={"split_seed": 3}))
    train(other_split)
    with pytest.raises(ConfigError, match=r"other data \(data\.split_seed differ\)"):
        train(validate(student(teacher=experiment_id(other_split))))
    with pytest.raises(ConfigError) as err:
        validate(
            {
                "data": {"dataset": "pc_prices"},
                "distill": {"teacher": "../../etc"},
                "model": {"backbone": "tiny", "layers": 1},
            }
        )
    assert "distill.teacher: must be an experiment id" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate(
            {
                "data": {"dataset": "pc_prices"},
                "distill": {"teacher": "0123456789ab"},
                "model": {"backbone": "tiny", "layers": 1},
            }
        )
    assert "distill.teacher: task 'price_regression' has no class logits" in str(err.value)
    assert "model.layers: the `tiny` backbone is built with model.tiny.layers" in str(err.value)
