"""W&B tracking through Lightning's WandbLogger.

`auto` mode is online only when the user has W&B credentials (WANDB_API_KEY or a netrc entry), and
otherwise offline into the run record: no prompt, no network wait. `ecomlab sync` uploads offline runs
later with `wandb sync`. The API key is never written by us, and is hidden from W&B while it writes an
offline run so that it cannot end up in the run's files either.
"""

from __future__ import annotations

import contextlib
import netrc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from experiments.config import TrackingConfig

WANDB_HOST = "api.wandb.ai"


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(os.environ.get("WANDB_BASE_URL_HOST", WANDB_HOST)) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(t: TrackingConfig) -> str:
    """online / offline / disabled, from the config, WANDB_MODE and the presence of credentials."""
    if t.mode != "auto":
        return t.mode
    env = os.environ.get("WANDB_MODE", "").lower()
    if env in ("offline", "disabled", "dryrun"):
        return "disabled" if env == "disabled" else "offline"
    return "online" if has_credentials() else "offline"


@contextlib.contextmanager
def _without_api_key(mode: str) -> Iterator[None]:
    """Offline runs need no key: keep it out of the W&B process so it cannot reach a file."""
    saved = os.environ.pop("WANDB_API_KEY", None) if mode != "online" else None
    try:
        yield
    finally:
        if saved is not None:
            os.environ["WANDB_API_KEY"] = saved


def make_logger(t: TrackingConfig, exp_id: str, run_dir: Path, config: dict[str, Any],
                tags: list[str]) -> Any | None:  # fmt: skip
    """A started WandbLogger writing under `run_dir/wandb`, or None when tracking is disabled."""
    mode = resolve_mode(t)
    if mode == "disabled":
        return None
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    settings = wandb.Settings(console="off", x_disable_stats=True, silent=True, init_timeout=90)
    with _without_api_key(mode):
        logger = WandbLogger(
            name=exp_id, project=t.project, entity=t.entity, save_dir=str(run_dir), mode=mode,
            group=t.group, job_type=t.job_type, tags=sorted({*tags, *t.tags}), config=config,
            log_model=False, settings=settings, reinit="finish_previous",
        )  # fmt: skip
        _ = logger.experiment  # start now, so a broken setup fails before training
    return logger


def finish(logger: Any | None, summary: dict[str, Any], exit_code: int = 0) -> None:
    if logger is None:
        return
    run = logger.experiment
    run.summary.update(summary)
    run.finish(exit_code=exit_code)


def offline_runs(root: Path) -> list[Path]:
    return sorted(root.glob("*/wandb/offline-run-*")) + sorted(root.glob("*/reproductions/*/wandb/offline-run-*"))


def sync(root: Path, dry_run: bool = False) -> list[tuple[Path, int]]:
    """Upload every offline run under `root` with `wandb sync`; returns (run folder, exit code)."""
    results = []
    for path in offline_runs(root):
        if (path / ".ecomlab-synced").exists():
            continue
        if dry_run:
            results.append((path, 0))
            continue
        proc = subprocess.run([sys.executable, "-m", "wandb", "sync", str(path)], check=False)
        if proc.returncode == 0:
            (path / ".ecomlab-synced").touch()
        results.append((path, proc.returncode))
    return results
