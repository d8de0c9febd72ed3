"""One sweep worker: claim and run trials until the study has its finished trials or time is up.

`ecomlab sweep` starts each worker as `python -m experiments.sweep.worker FILE ...`. On K devices a
worker is K rank processes (`sweep.rank_group`): rank 0 claims, asks and records; the others follow.
A worker started by the monitor watches it: when the monitor is gone (SIGKILL, a closed terminal)
the running trial is failed and queued again, and the worker exits at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from experiments.config.ids import experiment_id
from experiments.sweep.claim import ClaimLock, effective_budget, next_order
from experiments.sweep.file import Sweep, load_sweep
from experiments.sweep.objective import Objective, fail_trial, lost_peer, say_trial, trial_experiment
from experiments.sweep.space import suggest
from experiments.sweep.study import open_study, storage_url

if TYPE_CHECKING:  # the rank group imports torch; the monitor imports this module for GROUP_RESTART
    from experiments.sweep.rank_group import RankGroup

GROUP_RESTART = 75  # exit status of a K-device worker whose trial failed (recorded FAIL): start it afresh


@dataclass
class Running:
    """What a worker is doing, for its watchdog and its loop."""

    study: Any = None
    trial: Any = None  # the optuna Trial while one runs here
    broken: bool = False  # a trial failed inside train() on K devices: the group must restart
    lost_rank: int | None = None  # trial id whose group lost a rank (killed): retried like a dead worker
    parent: int | None = None  # the monitor's pid, when this worker watches it
    # held from a lost rank's exception until its trial is queued again: the watchdog must not end
    # the process in between (the trial would stay FAIL, never retried)
    requeueing: threading.Lock = field(default_factory=threading.Lock)

    def orphaned(self) -> str | None:
        """The reason to record when the watched monitor is gone, else None."""
        if self.parent is None or os.getppid() == self.parent:
            return None
        return f"the ecomlab sweep monitor (pid {self.parent}) is gone"


def run_worker(
    sweep_file: Path,
    runs_root: Path,
    worker: int,
    deadline: float | None,
    n_trials: int | None = None,
    console: Console | None = None,
    watch_parent: bool = False,
    study_name: str | None = None,
    test_every_trial: bool = False,
) -> int:
    """Run trials until the budget, the target or `deadline`; returns how many this worker ran.
    `watch_parent`: stop when the process that started this one (the monitor) is gone; `study_name`:
    the monitor's name for the study (`--new-study` suffixes the file's)."""
    from experiments.sweep.rank_group import RankGroup

    console = console or Console()
    sw = load_sweep(sweep_file)
    if study_name:
        sw.spec.name = study_name
    sw.test_every_trial = test_every_trial
    group = RankGroup.from_env()
    running = Running()
    if watch_parent:
        _watch_parent(running, sw, group)
    group.open(sw.spec.faults.rank_timeout)
    if not group.primary:
        return _follow(sw, runs_root, group, console)
    study, _seed, rdb = open_study(sw, runs_root, sampling=True)
    running.study = study
    claim = ClaimLock(rdb, sw.name)
    objective = Objective(sw, runs_root, worker, console, claim, group, running)
    return _claim_and_run(
        study, sw, objective, group, running, effective_budget(sw, n_trials), deadline, console
    )


def _claim_and_run(
    study: Any,
    sw: Sweep,
    objective: Objective,
    group: RankGroup,
    running: Running,
    budget: int | None,
    deadline: float | None,
    console: Console,
) -> int:
    ran = 0
    while True:
        order = next_order(study, sw, budget, deadline, objective.claim)  # "run" leaves the claim held
        group.share(order)
        if order == "stop":
            return ran
        if order == "wait":
            time.sleep(min(2.0, sw.spec.faults.heartbeat_interval))  # the rest runs elsewhere; one may fail
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,))
        finally:
            objective.claim.release()  # if the trial could not even start
        ran += 1
        if running.lost_rank is not None:
            _retry_lost_rank(study, sw, running)
        if running.broken:  # a rank failed inside training: the other ranks may sit in a collective
            console.print(
                f"worker {objective.worker}: a trial failed on {group.world} devices; the group restarts"
            )
            raise SystemExit(GROUP_RESTART)


def _retry_lost_rank(study: Any, sw: Sweep, running: Running) -> None:
    """Queue the trial of a group that lost a rank again, as Optuna retries a dead worker's trial."""
    import optuna

    from experiments.results import optuna_private

    try:
        trial = optuna_private.study_storage(study).get_trial(running.lost_rank)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=sw.spec.faults.max_retries)(study, trial)
    finally:
        running.lost_rank = None
        running.requeueing.release()


def _follow(sw: Sweep, runs_root: Path, group: RankGroup, console: Console) -> int:
    """Rank r > 0 of a K-device worker: run each trial rank 0 hands out, until it says stop."""
    import optuna
    from optuna_integration import TorchDistributedTrial

    from experiments.results.storage import storage
    from experiments.run.train import train
    from experiments.sweep.rank_group import DistributedPruning

    study = optuna.load_study(study_name=sw.name, storage=storage(storage_url(sw, runs_root)))
    monitor = sw.epoch_monitor()
    ran = 0
    while True:
        order = group.share()
        if order == "stop":
            return ran
        if order != "run":
            continue  # rank 0 is waiting for trials running elsewhere
        trial = TorchDistributedTrial(None)
        values = suggest(trial, sw.searched)
        try:
            cfg = trial_experiment(sw, values)
        except ValueError:
            continue  # rank 0 fails this trial the same way, before any collective
        say_trial(console, group, trial.number, experiment_id(cfg), values)
        if group.share():
            continue  # rank 0 reuses a finished record of the same experiment
        callbacks = [DistributedPruning(None, monitor, sw.report_sign)] if monitor else []
        try:
            train(
                cfg,
                runs_root,
                console=console,
                extra_callbacks=callbacks,
                extra_config={"study": sw.name, "trial": trial.number, **values},
                test=sw.test_every_trial,
            )
        except optuna.TrialPruned:
            pass  # rank 0 records it PRUNED
        except Exception as exc:
            # a lost peer (rank 0 or another rank killed) leaves the trial RUNNING: rank 0 or, if it is
            # gone, its stopped heartbeat fails it and queues it again; any other failure is this rank's
            if not lost_peer(exc):
                fail_trial(study, trial.number, f"rank {group.rank}: {type(exc).__name__}: {exc}")
            console.print(f"rank {group.rank}: trial {trial.number} failed: {type(exc).__name__}: {exc}")
            raise SystemExit(GROUP_RESTART) from None
        ran += 1


def _watch_parent(running: Running, sw: Sweep, group: RankGroup) -> None:
    """A thread that ends this worker when its monitor is gone (SIGKILL, a closed terminal): the
    running trial is failed and queued for a retry (rank 0), then the process exits at once."""
    running.parent = os.getppid()

    def watch() -> None:
        while (why := running.orphaned()) is None:
            time.sleep(1.0)
        running.requeueing.acquire(timeout=30)  # a lost rank's trial being queued again: let it finish
        trial, study = running.trial, running.study
        if group.primary and trial is not None and study is not None:
            with contextlib.suppress(Exception):
                fail_trial(study, trial.number, why, retry=sw.spec.faults.max_retries)
        os._exit(1)

    threading.Thread(target=watch, name="ecomlab-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """`python -m experiments.sweep.worker FILE --runs-dir DIR [--worker I] [--deadline T] [--n-trials N]`."""
    ap = argparse.ArgumentParser(prog="experiments.sweep.worker")
    ap.add_argument("sweep_file", type=Path)
    ap.add_argument("--runs-dir", type=Path, required=True)
    ap.add_argument("--worker", type=int, default=0)
    ap.add_argument("--deadline", type=float, default=None)
    ap.add_argument("--n-trials", type=int, default=None)
    ap.add_argument("--study-name", default=None)
    ap.add_argument("--test-every-trial", action="store_true")
    args = ap.parse_args(argv)
    threads = os.environ.get("ECOMLAB_WORKER_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    import warnings

    import optuna

    # heartbeats and fail_stale_trials are marked experimental; the worker relies on them on purpose
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    from experiments.core.errors import EcomlabError

    try:
        n = run_worker(
            args.sweep_file,
            args.runs_dir,
            args.worker,
            args.deadline,
            args.n_trials,
            console=Console(width=120),
            watch_parent=True,
            study_name=args.study_name,
            test_every_trial=args.test_every_trial,
        )
    except EcomlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"worker {args.worker}: ran {n} trial(s)")
    return 0


if __name__ == "__main__":
    from experiments.core.process import exit_now

    exit_now(main())
