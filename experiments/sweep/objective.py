"""The objective a worker hands to `study.optimize`: one trial is one `train(cfg)` run.

Each trial samples its values (on K devices every rank through optuna-integration's
`TorchDistributedTrial`, so all ranks get rank 0's values), builds its experiment, reuses a finished
record of the same experiment or trains it with the pruning reporter, keeps its metrics on the trial,
uploads its record to the study's artifact store, and returns the objective values.
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from experiments.config.ids import experiment_id
from experiments.core.errors import EcomlabError, OutOfMemory
from experiments.results import optuna_private, record_store
from experiments.sweep.claim import ClaimLock
from experiments.sweep.file import Sweep
from experiments.sweep.space import suggest
from experiments.sweep.study import artifacts_location

if TYPE_CHECKING:  # the rank group imports torch; the monitor process never needs it
    from experiments.sweep.rank_group import RankGroup

RECORDED_METRICS = ("val/", "test/", "model/")  # the run's metrics kept on its Optuna trial
WORKER_TOKEN_ENV = "ECOMLAB_WORKER_TOKEN"  # set by the monitor for each worker process it starts
WORKER_TOKEN_ATTR = "worker_token"


def metric_value(metrics: dict[str, Any], name: str) -> float:
    v = metrics.get(name)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        raise ValueError(f"the run record has no value for {name!r} (got {v!r})")
    return float(v)


def lost_peer(exc: BaseException) -> bool:
    """Whether a collective failed because another rank is gone (killed, crashed) rather than for a
    reason of this rank's own: gloo and NCCL report it as a closed or reset connection."""
    import torch.distributed as dist

    text = str(exc)
    reset = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "NCCL")
    return isinstance(exc, dist.DistError) or (
        isinstance(exc, RuntimeError) and any(k in text for k in reset)
    )


def fail_trial(study: Any, number: int, reason: str, retry: int | None = None) -> None:
    """Mark a RUNNING trial FAIL with `reason` (from any process); with `retry`, queue it again as
    Optuna's heartbeat does for a dead worker (RetryHeartbeatStaleTrialCallback, up to `retry` times)."""
    import optuna

    storage = optuna_private.study_storage(study)
    trial = optuna_private.trial_by_number(study, number)
    if trial.state != optuna.trial.TrialState.RUNNING:
        return
    tid = optuna_private.trial_id(trial)
    storage.set_trial_user_attr(tid, "error", reason[:1000])
    try:
        storage.set_trial_state_values(tid, optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # it ended meanwhile
    if retry is not None:
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retry)(study, storage.get_trial(tid))


def say_trial(console: Console, group: RankGroup, number: int, exp_id: str, values: dict[str, Any]) -> None:
    where = f"rank {group.rank}/{group.world}: " if group.world > 1 else ""
    line = f"{where}trial {number}, experiment {exp_id}, params {json.dumps(values, sort_keys=True)}"
    console.print(line, highlight=False, soft_wrap=True)


def trial_experiment(sw: Sweep, values: dict[str, Any]) -> Any:
    """The trial's experiment; a combination the config refuses fails the trial, not the worker."""
    try:
        return sw.experiment(values)
    except EcomlabError as exc:
        raise ValueError(f"invalid parameter combination: {exc}") from None


@dataclass
class Objective:
    """`objective(trial)` for one worker's rank 0 (see the module docstring).

    Args:
        sw: the sweep.
        runs_root: the runs folder.
        worker: this worker's index (kept on each trial).
        console: where trial lines and training progress go.
        claim: held from `claim.next_order` until the new trial exists and says whose it is (so that a
            monitor holding the claim knows every RUNNING trial without a worker token is an orphan).
        group: this worker's rank group (a group of one on one device).
        running: what the worker's watchdog and loop read (`worker.Running`).
    """

    sw: Sweep
    runs_root: Path
    worker: int
    console: Console
    claim: ClaimLock
    group: RankGroup
    running: Any

    def __post_init__(self) -> None:
        self.monitor = self.sw.epoch_monitor()
        location = artifacts_location(self.sw)
        self.store = record_store.open_store(location) if location else None

    def __call__(self, trial: Any) -> float | list[float]:
        self.running.trial = trial
        self._tag(trial)
        self.claim.release()  # the trial is RUNNING and tagged: other workers may claim the next one
        try:
            values = suggest(self._sampled(trial), self.sw.searched)
            cfg = trial_experiment(self.sw, values)
            exp_id = experiment_id(cfg)
            trial.set_user_attr("experiment_id", exp_id)
            say_trial(self.console, self.group, trial.number, exp_id, values)
            metrics = self._reuse(trial, exp_id) or self._train(trial, cfg, values)
            # one write, not one per metric: each attribute is a storage transaction
            kept = {k: v for k, v in metrics.items() if k.startswith(RECORDED_METRICS) and v is not None}
            trial.set_user_attr("metrics", kept)
            for c in self.sw.constraints:  # Optuna's samplers and best_trial read them (<= 0: met)
                trial.set_constraint(c.text, c.violation(metrics))
            self._share(trial, exp_id)
            out = [metric_value(metrics, m.name) for m in self.sw.objectives]
            return out if self.sw.multi_objective else out[0]
        except Exception as exc:
            self._failed(trial, exc)
            raise
        finally:
            self.running.trial = None

    def _tag(self, trial: Any) -> None:
        """Whose trial this is: the monitor that sees this worker die fails it by its token; other
        machines say where its record was written."""
        trial.set_user_attr(
            WORKER_TOKEN_ATTR, os.environ.get(WORKER_TOKEN_ENV) or f"{socket.gethostname()}:{os.getpid()}"
        )
        trial.set_user_attr("worker", self.worker)
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("runs_dir", str(self.runs_root.resolve()))
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:  # the GPUs this worker owns
            trial.set_user_attr("devices", os.environ["CUDA_VISIBLE_DEVICES"])
        if self.group.world > 1:
            trial.set_user_attr("ranks", self.group.world)
        if self.sw.spec.pruner.metric is not None:  # what its reports are (and its value, if pruned)
            trial.set_user_attr("reported", self.sw.reported)

    def _sampled(self, trial: Any) -> Any:
        """What the values are drawn from: on K devices rank 0's values reach every rank."""
        from optuna_integration import TorchDistributedTrial

        return TorchDistributedTrial(trial) if self.group.world > 1 else trial

    def _reuse(self, trial: Any, exp_id: str) -> dict[str, Any] | None:
        """The metrics of a finished record of the same experiment (another trial, an earlier sweep)."""
        done = self.runs_root / exp_id / "metrics.json"
        if not self.group.share(done.is_file()):
            return None
        trial.set_user_attr("reused_record", True)
        return json.loads(done.read_text())

    def _train(self, trial: Any, cfg: Any, values: dict[str, Any]) -> dict[str, Any]:
        import optuna

        from experiments.run.train import train
        from experiments.sweep.rank_group import DistributedPruning

        callbacks = [DistributedPruning(trial, self.monitor, self.sw.report_sign)] if self.monitor else []
        extra = {"study": self.sw.name, "trial": trial.number, **values}
        try:
            return train(
                cfg,
                self.runs_root,
                console=self.console,
                extra_callbacks=callbacks,
                extra_config=extra,
                test=self.sw.test_every_trial,
            )
        except OutOfMemory as exc:  # a fact about this region of the space: pruned, not retried
            trial.set_user_attr("pruned_reason", "oom")
            trial.set_user_attr("error", str(exc)[:1000])
            for c in self.sw.constraints:  # and infeasible, for the samplers that read constraints
                trial.set_constraint(c.text, float("inf"))
            raise optuna.TrialPruned(str(exc)) from exc
        except Exception as exc:
            # a rank failed inside training: the other ranks may sit in a collective, the group restarts
            self.running.broken = self.group.world > 1 and not isinstance(exc, optuna.TrialPruned)
            raise

    def _share(self, trial: Any, exp_id: str) -> None:
        """The trial's record into the storage itself (config, manifest, metrics) and, with one, into the
        study's artifact store; a failure here is reported, not fatal."""
        try:
            record_store.keep_in_storage(trial, self.runs_root / exp_id)
        except Exception as exc:  # noqa: BLE001 - the trial itself is done; say what was not kept
            self.console.print(
                f"[yellow]trial {trial.number}: its record was not kept in the storage:[/] {exc}"
            )
        if self.store is None:
            return
        try:
            record_store.upload_record(
                self.store, trial, self.runs_root / exp_id, self.sw.spec.artifacts.weights
            )
        except Exception as exc:  # noqa: BLE001 - the trial itself is done; say what was not shared
            trial.set_user_attr("artifacts_error", f"{type(exc).__name__}: {exc}"[:500])
            self.console.print(f"[yellow]trial {trial.number}: its record was not uploaded:[/] {exc}")

    def _failed(self, trial: Any, exc: Exception) -> None:
        """Record why the trial ended: pruned (its record is shared), a lost rank (retried as a dead
        worker's trial) or its own error."""
        import optuna

        if isinstance(exc, optuna.TrialPruned):
            self._share(trial, trial.user_attrs["experiment_id"])
            return
        multi = self.group.world > 1
        # on K devices a rank that failed on its own has already written its reason; keep it
        if multi and optuna_private.stored_trial(trial.study, trial).user_attrs.get("error"):
            return
        if multi and lost_peer(exc):  # a rank was killed: FAIL, and queued again
            self.running.requeueing.acquire()
            self.running.lost_rank = optuna_private.trial_id(trial)
            # with the monitor killed, another rank's watchdog may end it before this one's does
            why = self.running.orphaned() or f"a rank of the group is gone: {type(exc).__name__}: {exc}"
            trial.set_user_attr("error", why[:1000])
        else:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:1000])
