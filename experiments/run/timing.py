"""Where a run's time goes (`time/<phase>_s` in metrics.json and W&B), and which metrics measure the
machine rather than the model (`reproduce` does not require those to match)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

TIMING_PREFIX = "time/"
MEMORY_PREFIX = "memory/"  # the process's measured peak memory, and the estimate that depends on it
TIMED_METRICS = ("model/latency_ms", "model/latency_ms_b32")


def is_timing(name: str) -> bool:
    """A metric of the machine (time, memory), not of the model: `reproduce` lets it differ."""
    return name.startswith((TIMING_PREFIX, MEMORY_PREFIX)) or name in TIMED_METRICS


class Phases:
    """Seconds spent in each named phase of a run, as `time/<name>_s` metrics."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def metrics(self) -> dict[str, float]:
        return {f"{TIMING_PREFIX}{k}_s": round(v, 3) for k, v in self.seconds.items()}
