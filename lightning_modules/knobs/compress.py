"""`compress.*`: score the trial on its dynamic-int8 model (`experiments.run.single`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from experiments.core.config_group import Group
from experiments.core.knob import Knob


class CompressConfig(Group):
    int8: bool = Field(
        False,
        description="Final metrics and latency of the dynamic-int8 model (CPU, one device); fp32's kept as fp32/*.",
    )


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    t = cfg.trainer
    if cfg.compress.int8 and (t.accelerator in ("gpu", "cuda", "mps") or t.devices * t.num_nodes > 1):
        yield "compress.int8: dynamic int8 runs on one CPU device; use trainer.accelerator cpu and trainer.devices 1"


KNOB = Knob("compress", CompressConfig, "Quantisation of the trained model.", refuse=_refuse)
