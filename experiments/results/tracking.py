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
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from experiments.config.schema import TrackingConfig

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


def _list_packages_once() -> None:
    """W&B lists every installed distribution at each run's start, for the run's requirements.txt
    (0.3 s on this machine, most of an offline run's start). A process's packages do not change
    between its runs (a sweep worker's trials), so list them on its first run only."""
    import wandb.util

    if getattr(wandb.util.working_set, "listed_once", False):
        return
    packages = list(wandb.util.working_set())

    def working_set() -> Any:
        return iter(packages)

    working_set.listed_once = True  # type: ignore[attr-defined]
    wandb.util.working_set = working_set


def make_logger(
    t: TrackingConfig, exp_id: str, run_dir: Path, config: dict[str, Any], tags: list[str]
) -> Any | None:
    """A started WandbLogger writing under `run_dir/wandb`, or None when tracking is disabled."""
    mode = resolve_mode(t)
    if mode == "disabled":
        return None
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    settings = wandb.Settings(console="off", x_disable_stats=True, silent=True, init_timeout=90)
    _list_packages_once()
    with _without_api_key(mode):
        logger = WandbLogger(
            name=exp_id,
            project=t.project,
            entity=t.entity,
            save_dir=str(run_dir),
            mode=mode,
            group=t.group,
            job_type=t.job_type,
            tags=sorted({*tags, *t.tags}),
            config=config,
            log_model=False,
            settings=settings,
            reinit="finish_previous",
        )
        _ = logger.experiment  # start now, so a broken setup fails before training
    return logger


def record_facts(t: TrackingConfig, logger: Any | None) -> dict[str, Any]:
    """What a run's manifest says about its W&B run."""
    return {
        "mode": resolve_mode(t),
        "project": t.project,
        "run_id": logger.experiment.id if logger else None,
        "url": logger.experiment.url if logger else None,
    }


def finish(logger: Any | None, summary: dict[str, Any], exit_code: int = 0) -> None:
    if logger is None:
        return
    run = logger.experiment
    run.summary.update(summary)
    run.finish(exit_code=exit_code)


def objective_values(trial: Any, n: int) -> list[Any]:
    """A trial's n objective values, or None each: a pruned trial's value is its last report, which
    under the sweep's `pruner.metric` (the trial's `reported`) is another metric's, not the objective's."""
    other = trial.state.name != "COMPLETE" and trial.user_attrs.get("reported")
    return list(trial.values) if trial.values and not other else [None] * n


def log_study(study: Any, t: TrackingConfig, run_dir: Path, tags: list[str]) -> str | None:
    """A study-level W&B run (job type `study`, in the study's group): the best parameters at the top
    level of its config, the trials table, and the parameter importances. Returns its run id."""
    mode = resolve_mode(t)
    if mode == "disabled":
        return None
    import optuna
    import wandb

    metrics = study.user_attrs.get("metrics") or [{"name": "value", "goal": "maximize"}]
    names = [m["name"] for m in metrics]
    trials = study.get_trials(deepcopy=False)
    params = sorted({k for tr in trials for k in tr.params})
    rows = [
        [
            tr.number,
            tr.state.name,
            *(tr.params.get(p) for p in params),
            *objective_values(tr, len(names)),
            tr.duration.total_seconds() if tr.duration else None,
            tr.user_attrs.get("experiment_id"),
        ]
        for tr in trials
    ]
    complete = [tr for tr in trials if tr.state.name == "COMPLETE"]
    best = study.best_trials if len(names) > 1 else ([study.best_trial] if complete else [])
    config: dict[str, Any] = {
        "study": study.study_name,
        "metrics": metrics,
        "directions": [d.name for d in study.directions],
    }
    summary: dict[str, Any] = {
        "trials/" + s.lower(): sum(tr.state.name == s for tr in trials)
        for s in ("COMPLETE", "PRUNED", "FAIL")
    }
    if len(best) == 1:
        config.update(best[0].params)  # top level, as W&B shows a run's parameters
        summary.update({f"best/{n}": v for n, v in zip(names, best[0].values)})
        summary.update(
            {"best/trial": best[0].number, "best/experiment_id": best[0].user_attrs.get("experiment_id")}
        )
    elif best:
        summary["pareto_front/experiment_ids"] = [tr.user_attrs.get("experiment_id") for tr in best]
    if base := study.user_attrs.get("baseline"):  # the task's cheap baseline on the same split
        summary["baseline/name"] = base["name"]
        summary.update({f"baseline/{k}": v for k, v in base["metrics"].items()})
        if len(best) == 1:
            for n, v in zip(names, best[0].values):
                if n in base["metrics"]:
                    summary[f"best_vs_baseline/{n}"] = v - base["metrics"][n]
    importances: dict[str, float] = {}
    if len(complete) >= 2 and params:
        try:
            with warnings.catch_warnings():  # "importances will be equal" on tiny studies
                warnings.simplefilter("ignore", UserWarning)
                importances = optuna.importance.get_param_importances(
                    study, target=(lambda tr: tr.values[0]) if len(names) > 1 else None
                )
        except (RuntimeError, ValueError):  # e.g. every parameter constant across completed trials
            importances = {}
    summary.update({f"importance/{k}": float(v) for k, v in importances.items()})
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(console="off", x_disable_stats=True, silent=True, init_timeout=90)
    with _without_api_key(mode):
        run = wandb.init(
            project=t.project,
            entity=t.entity,
            dir=str(run_dir),
            mode=mode,
            group=study.study_name,
            job_type="study",
            name=f"study-{study.study_name}",
            tags=sorted({*tags, *t.tags}),
            config=config,
            settings=settings,
            reinit="finish_previous",
        )
        run.log(
            {
                "trials": wandb.Table(
                    columns=["number", "state", *params, *names, "duration_s", "experiment_id"], data=rows
                ),
                "importances": wandb.Table(
                    columns=["parameter", "importance"], data=[[k, float(v)] for k, v in importances.items()]
                ),
            }
        )
        run.summary.update(summary)
        run_id = run.id
        run.finish()
    return run_id


def offline_runs(root: Path) -> list[Path]:
    return (
        sorted(root.glob("*/wandb/offline-run-*"))
        + sorted(root.glob("*/reproductions/*/wandb/offline-run-*"))
        + sorted(root.glob("sweeps/*/wandb/offline-run-*"))
    )


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
