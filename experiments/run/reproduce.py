"""`reproduce(id)`: re-run a recorded config through `train` and compare metrics, weights and setup."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from experiments.config.ids import experiment_id
from experiments.config.schema import validate
from experiments.core.errors import RunRecordError
from experiments.results import run_record
from experiments.run.final_test import deferred
from experiments.run.timing import is_timing
from experiments.run.train import train

# Float kernels differ between CPU instruction sets (AVX2, AVX-512) and GPU models, so the same seed
# and config give bit-identical weights only on the same kind of hardware (PyTorch promises no more).
# Across hardware a reproduction is "equivalent" when every metric agrees to these tolerances.
HARDWARE = ("cpu", "cpu isa", "cpu flags", "cuda device")
METRIC_RTOL, METRIC_ATOL = 1e-4, 1e-6


@dataclass
class Reproduction:
    """What `reproduce` found: metric pairs, weight hashes, and what changed in the setup."""

    exp_id: str
    path: Path
    metrics: list[tuple[str, Any, Any]]  # (name, original, new)
    weights: tuple[str | None, str | None]
    setup_changes: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        same_metrics = all(a == b for k, a, b in self.metrics if not is_timing(k))
        return same_metrics and self.weights[0] == self.weights[1] and self.weights[0] is not None

    @property
    def other_hardware(self) -> bool:
        """The original ran on another kind of CPU or GPU, or did not record which."""
        return any(k in HARDWARE for k, _, _ in self.setup_changes)

    @property
    def equivalent(self) -> bool:
        """Not bit-identical, but on other hardware, with every metric within METRIC_RTOL."""
        if self.identical or not self.other_hardware:
            return False
        return all(_close(a, b) for k, a, b in self.metrics if not is_timing(k))


def _close(a: Any, b: Any) -> bool:
    if a == b:
        return True
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    return numbers and math.isclose(a, b, rel_tol=METRIC_RTOL, abs_tol=METRIC_ATOL)


def _setup_facts(manifest: dict[str, Any]) -> dict[str, Any]:
    env = manifest.get("environment", {})
    facts = {
        "data fingerprint": manifest.get("data", {}).get("fingerprint"),
        "tokenizer fingerprint": (manifest.get("tokenizer") or {}).get("fingerprint"),
        "code commit": manifest.get("code", {}).get("commit"),
        "uncommitted diff sha256": manifest.get("code", {}).get("diff_sha256"),
        "python": env.get("python"),
        "platform": env.get("platform"),
        "cpu": (env.get("cpu") or {}).get("model"),
        "cpu isa": (env.get("cpu") or {}).get("isa"),
        "cpu flags": (env.get("cpu") or {}).get("flags_sha256"),
        "torch threads": env.get("torch_threads"),
        "cuda device": env.get("cuda_device"),
    }
    for pkg, ver in env.get("packages", {}).items():
        facts[f"package {pkg}"] = ver
    return facts


def _check_devices(cfg: Any, exp_id: str) -> None:
    """A run recorded on more GPUs or nodes than this machine has stops here, saying what differs
    (another device count would be another experiment: the global batch is batch x devices x nodes).
    On CPU, gloo processes stand in for devices, so any count runs."""
    t = cfg.trainer
    if t.num_nodes > 1:
        raise RunRecordError(
            f"Run {exp_id} trained on {t.num_nodes} nodes x {t.devices} devices; reproduce it "
            "the same way, under torchrun or SLURM on as many nodes (docs/cluster.md)."
        )
    if t.accelerator in ("gpu", "cuda") or (t.accelerator == "auto" and t.devices > 1):
        import torch

        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if t.accelerator == "auto" and have == 0:
            return  # auto on a machine without GPUs trains on CPU processes, as the original may have
        if have < t.devices:
            raise RunRecordError(
                f"Run {exp_id} trained on {t.devices} GPU(s) (trainer.accelerator {t.accelerator}); this "
                f"machine has {have}. Run it where {t.devices} GPUs are free; with `ecomlab run "
                f"runs/{exp_id}/config.yaml --set trainer.devices={max(have, 1)}` it is a different "
                "experiment (the global batch changes), not a reproduction."
            )


def reproduce(
    exp_id: str, runs_dir: str | Path | None = None, console: Console | None = None
) -> Reproduction:
    console = console or Console()
    root = run_record.runs_root(runs_dir)
    rec = run_record.read(root, exp_id)
    if not rec.completed:
        raise RunRecordError(
            f"Run {exp_id} has no metrics.json (it did not complete); nothing to compare with."
        )
    cfg = validate(rec.config, source=str(rec.path / "config.yaml"))
    if experiment_id(cfg) != exp_id:
        console.print(
            f"[yellow]warning:[/] {rec.path / 'config.yaml'} now hashes to {experiment_id(cfg)}; "
            "it was edited after the run."
        )
    else:
        console.print(f"Recorded config: same config (it still hashes to {exp_id}).")
    _check_devices(cfg, exp_id)
    threads = rec.manifest.get("environment", {}).get("torch_threads")
    if cfg.trainer.threads is None and threads:
        cfg.trainer.threads = threads  # CPU sums depend on the thread count; use the recorded one
    out = rec.path / "reproductions" / time.strftime("%Y%m%d-%H%M%S")
    # root: where a teacher is found; a sweep trial whose test was deferred and never run is re-run
    # without it too, so that the records compare metric for metric
    new_metrics = train(cfg, root, out_dir=out, console=console, test=not deferred(rec))
    new = run_record.read_dir(out)

    names = sorted(set(rec.metrics or {}) | set(new_metrics))
    pairs = [(k, (rec.metrics or {}).get(k), new_metrics.get(k)) for k in names]
    old_facts, new_facts = _setup_facts(rec.manifest), _setup_facts(new.manifest)
    changes = [
        (k, old_facts.get(k), new_facts.get(k)) for k in old_facts if old_facts.get(k) != new_facts.get(k)
    ]
    result = Reproduction(
        exp_id=exp_id,
        path=out,
        metrics=pairs,
        weights=(rec.manifest.get("weights_sha256"), new.manifest.get("weights_sha256")),
        setup_changes=changes,
    )
    show(result, console, gpu=bool(new.manifest.get("environment", {}).get("cuda")))
    return result


def show(r: Reproduction, console: Console, gpu: bool = False) -> None:
    table = Table(title=f"Reproduction of {r.exp_id}")
    for col in ("metric", "original", "reproduced", ""):
        table.add_column(col)
    for k, a, b in r.metrics:
        mark = "" if is_timing(k) else ("same" if a == b else "[red]differs[/]")
        table.add_row(k, f"{a}", f"{b}", mark)
    w0, w1 = r.weights
    table.add_row(
        "weights sha256", (w0 or "-")[:16], (w1 or "-")[:16], "same" if w0 == w1 and w0 else "[red]differs[/]"
    )
    console.print(table)
    if r.setup_changes:
        ch = Table(title="[yellow]Setup changed since the original run[/]")
        for col in ("what", "original", "now"):
            ch.add_column(col)
        for k, a, b in r.setup_changes:
            ch.add_row(k, str(a), str(b))
        console.print(ch)
    if r.identical:
        console.print(f"[green]Identical:[/] every metric and the weights' sha256 match. Record: {r.path}")
    elif r.equivalent:
        console.print(
            f"[green]Equivalent:[/] every metric agrees within {METRIC_RTOL:g} (relative); the weights' bits "
            "differ because the hardware differs from the original's (or the record does not say which it "
            "was), and float kernels differ between CPU instruction sets and GPU models. On the same kind "
            f"of hardware the run is bit-identical. Record: {r.path}"
        )
    else:
        why = (
            " GPU kernels are not bit-deterministic; small differences are expected there."
            if gpu
            else " See the setup changes above."
            if r.setup_changes
            else ""
        )
        console.print(f"[red]Not identical.[/]{why} Record: {r.path}")
