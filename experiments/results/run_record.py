"""Run records: `runs/<experiment_id>/` with the resolved config, metrics, manifest, weights, curves.

Layout of one record:
    config.yaml       the resolved config (every default filled in); `ecomlab run` accepts it as is
    manifest.json     code commit and diff hash, versions, platform, seeds, fingerprints, command line
    code.diff         the uncommitted diff of the project when the run started (if any)
    metrics.json      final metrics (written last: its presence means the run completed)
    metrics.csv       per-step / per-epoch metrics (Lightning's CSVLogger)
    model.safetensors the best weights
    wandb/            W&B files (offline runs can be uploaded with `ecomlab sync`)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from experiments.core.errors import RunRecordError

RUNS_ENV = "ECOMLAB_RUNS"
ID_PATTERN = re.compile(r"^[0-9a-f]{12}$")
PACKAGES = (
    "torch",
    "lightning",
    "transformers",
    "tokenizers",
    "peft",
    "torchmetrics",
    "optuna",
    "wandb",
    "pydantic",
    "numpy",
    "pandas",
    "pyarrow",
    "safetensors",
    "ecomlab",
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def runs_root(path: str | Path | None = None) -> Path:
    """`path`, else `$ECOMLAB_RUNS`, else `./runs`."""
    return Path(path or os.environ.get(RUNS_ENV) or "runs")


def check_id(exp_id: str) -> str:
    """An experiment id is 12 lowercase hex digits; anything else (`/`, `..`) is refused."""
    if not isinstance(exp_id, str) or not ID_PATTERN.match(exp_id):
        raise RunRecordError(
            f"{exp_id!r} is not a valid experiment id: ids are 12 hex digits such as 3f2a9c1b7d20 "
            "(see `ecomlab runs`)."
        )
    return exp_id


def record_path(root: Path, exp_id: str) -> Path:
    return root / check_id(exp_id)


def _write_whole(path: Path, text: str) -> None:
    """Write `text` to a hidden file beside `path`, then rename it over `path`: a process killed
    half-way leaves the old file (or none), never a half-written one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_yaml(path: Path, data: dict[str, Any], header: str | None = None) -> None:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    _write_whole(path, (header + "\n" if header else "") + text)


def write_json(path: Path, data: dict[str, Any]) -> None:
    _write_whole(path, json.dumps(data, indent=2, sort_keys=False, default=str))


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def code_state() -> tuple[dict[str, Any], str]:
    """(git facts for the manifest, the uncommitted diff text)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "diff_sha256": None}, ""
    diff = _git("diff", "HEAD", "--", ".", ":(exclude)runs") or ""
    untracked = (_git("ls-files", "--others", "--exclude-standard") or "").split()
    return {
        "commit": commit.strip(),
        "dirty": bool(diff.strip()) or bool(untracked),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
        "untracked_files": untracked[:50],
    }, diff


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu() -> dict[str, str | None]:
    """Which CPU ran this: float kernels differ between instruction sets (AVX2, AVX-512), so the same
    seed and config give bit-identical weights only on the same kind of CPU."""
    import torch

    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = " ".join(sorted(info.get("flags", "").split()))
    return {
        "model": info.get("model name") or platform.processor() or None,
        "isa": torch.backends.cpu.get_cpu_capability(),
        "flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:12] if flags else None,
    }


def environment() -> dict[str, Any]:
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "packages": package_versions(),
    }


@dataclass
class RunRecord:
    """A run record read back from disk."""

    path: Path
    config: dict[str, Any]
    manifest: dict[str, Any]
    metrics: dict[str, Any] | None

    @property
    def exp_id(self) -> str:
        return self.path.name

    @property
    def completed(self) -> bool:
        return self.metrics is not None

    @property
    def fold(self) -> tuple[int, int] | None:
        """(chosen fold, folds) of a cross-validated run, whose weights are that fold's; else None."""
        cv = self.manifest.get("cv")
        return (cv["chosen_fold"], cv["folds"]) if cv else None


def read(root: Path, exp_id: str) -> RunRecord:
    path = record_path(root, exp_id)
    if not (path / "config.yaml").is_file():
        known = [r.exp_id for r in list_records(root)]
        close = [k for k in known if k.startswith(exp_id[:3])][:5]
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise RunRecordError(f"No run record {exp_id} under {root}/ (`ecomlab runs` lists them).{hint}")
    return read_dir(path)


def read_dir(path: Path) -> RunRecord:
    """A record read back; a damaged file is a RunRecordError that names it."""

    def load(name: str, parse: Any) -> Any:
        f = path / name
        try:
            return parse(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RunRecordError(
                f"Run record {path.name} is damaged: {f} cannot be read ({why}). "
                "Delete the folder or run the experiment again with `ecomlab run --force`."
            ) from None

    config = load("config.yaml", yaml.safe_load) or {}
    if not isinstance(config, dict):
        raise RunRecordError(f"Run record {path.name} is damaged: {path / 'config.yaml'} is not a mapping.")
    manifest = load("manifest.json", json.loads) if (path / "manifest.json").is_file() else {}
    metrics = load("metrics.json", json.loads) if (path / "metrics.json").is_file() else None
    return RunRecord(path=path, config=config, manifest=manifest, metrics=metrics)


def list_records(root: Path, damaged: list[str] | None = None) -> list[RunRecord]:
    """Every readable record under `root`; a damaged one is skipped (its error appended to `damaged`)."""
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if ID_PATTERN.match(p.name) and (p / "config.yaml").is_file():
            try:
                out.append(read_dir(p))
            except RunRecordError as exc:
                if damaged is not None:
                    damaged.append(str(exc))
    return out


class RunRecordWriter:
    """Owns a record while its run is going: the one place that writes `config.yaml`,
    `manifest.json` and `metrics.json`, sets the status and handles failure.

    `with writer.recording():` marks the manifest `pruned` (a sweep stopped it), `interrupted`
    (Ctrl-C) or `failed` with the error whatever goes wrong inside, finishes the attached W&B run
    with exit code 1, and re-raises. `complete(metrics)` writes `metrics.json` last: its presence
    marks a completed run.
    """

    STALE = ("metrics.json", "metrics.csv", "model.safetensors", "checkpoints", "wandb")

    def __init__(
        self, out: Path, exp_id: str, config: dict[str, Any], facts: dict[str, Any], enabled: bool = True
    ) -> None:
        import shutil
        import time

        self.out = out
        self.logger: Any = None  # the W&B logger, once there is one
        self.enabled = enabled  # False on every rank but 0 of a multi-device run: it writes nothing
        self.manifest: dict[str, Any] = {}
        if not enabled:
            return
        for stale in self.STALE:
            p = out / stale
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        write_yaml(
            out / "config.yaml", config, header=f"# experiment {exp_id}\n# ecomlab run {out / 'config.yaml'}"
        )
        code, diff = code_state()
        if diff:
            (out / "code.diff").write_text(diff, encoding="utf-8")
        self.manifest: dict[str, Any] = {
            "experiment_id": exp_id,
            "status": "running",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": sys.argv,
            "code": code,
            **facts,
        }
        self._write_manifest()

    def _write_manifest(self) -> None:
        if self.enabled:
            write_json(self.out / "manifest.json", self.manifest)

    def update(self, **facts: Any) -> None:
        """Add facts to the manifest (data fingerprints, environment, tracking) and write it."""
        self.manifest.update(facts)
        self._write_manifest()

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        try:
            yield
        except BaseException as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: BaseException) -> None:
        if not self.enabled or self.manifest.get("status") != "running":
            return
        import optuna

        from experiments.core.errors import OutOfMemory

        oom = isinstance(exc, OutOfMemory)
        status = (
            "pruned"
            if isinstance(exc, optuna.TrialPruned) or oom
            else "interrupted"
            if isinstance(exc, KeyboardInterrupt)
            else "failed"
        )
        self.update(
            status=status, error=f"{type(exc).__name__}: {exc}"[:2000], **({"reason": "oom"} if oom else {})
        )
        if self.logger is not None:
            from experiments.results import tracking

            tracking.finish(self.logger, {"status": status}, exit_code=1)

    def complete(self, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        import time

        from experiments.results import tracking

        start = time.perf_counter()
        self.update(status="completed", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        tracking.finish(self.logger, metrics)
        # measured after W&B's summary was sent, so only metrics.json has it
        metrics["time/record_s"] = round(time.perf_counter() - start, 3)
        write_json(self.out / "metrics.json", metrics)  # last: its presence marks a completed run
