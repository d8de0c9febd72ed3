"""`ecomlab sweep`: an Optuna study from a sweep file, run by N workers sharing its storage.

Each trial is a normal `train(cfg)` run with its own run record and experiment id (kept on the trial as
the user attribute `experiment_id`) and its own W&B run (group = study name, job type = sweep).

Workers claim trials under the storage's claim lock (`study.ClaimLock`), so together, on any number
of machines, they start exactly the budgeted number of finished (complete or pruned) trials; failed
trials do not use up the budget. Storage heartbeats mark the trial of a killed worker FAIL after the
grace period, and Optuna's RetryHeartbeatStaleTrialCallback queues it again; the monitor replaces a
worker that died. A worker whose trials run on K devices is K rank processes (`rank_group`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments import record_store, run_record
from experiments.compare import fmt_value
from experiments.config import ExperimentConfig, experiment_id, validate
from experiments.core.errors import EcomlabError
from experiments.registry import TASKS
from experiments.sweep_config import Sweep, load_sweep

FINISHED = ("COMPLETE", "PRUNED")
GROUP_RESTART = 75  # exit status of a K-device worker whose trial failed (recorded FAIL): start it afresh
RECORDED_METRICS = ("val/", "test/", "model/")  # the run's metrics kept on its Optuna trial


def sweep_dir(runs_root: Path, name: str) -> Path:
    return runs_root / "sweeps" / name


def storage_url(sw: Sweep, runs_root: Path) -> str:
    """`$ECOMLAB_STORAGE` (what `--storage` sets), else the file's `storage`, else SQLite under the
    runs folder. Workers get it through the environment, never on a command line."""
    from experiments.study import STORAGE_ENV, default_storage_url

    return os.environ.get(STORAGE_ENV) or sw.storage or default_storage_url(runs_root)


def trial_experiment(sw: Sweep, values: dict[str, Any]) -> ExperimentConfig:
    """The experiment a trial runs: base + values, tracked in the study's W&B group."""
    raw = sw.trial_config(values)
    tracking = raw.setdefault("tracking", {})
    tracking["group"] = sw.name
    tracking["job_type"] = "sweep"
    tracking["tags"] = sorted({*tracking.get("tags", []), f"study:{sw.name}"})
    if sw.project:
        tracking["project"] = sw.project
    if sw.entity:
        tracking["entity"] = sw.entity
    first = sw.objectives[0]
    if first.name in per_epoch_metrics(sw.base_task):
        trainer = raw.setdefault("trainer", {})
        trainer["monitor"] = first.name
        trainer["mode"] = "max" if first.goal == "maximize" else "min"
    return validate(raw)


def per_epoch_metrics(task: str) -> set[str]:
    """What a task logs on val every epoch; not final-only metrics such as val/f1_best."""
    return {f"val/{m}" for m in TASKS[task].metrics}


def base_experiment_id(sw: Sweep) -> str:
    return experiment_id(trial_experiment(sw, {}))


SLOTS_ATTR = "ecomlab:sampler_slots"


def artifacts_location(sw: Sweep) -> str | None:
    """`$ECOMLAB_ARTIFACTS` (what `--artifacts` sets), else the file's `artifacts.store`."""
    return os.environ.get(record_store.ARTIFACTS_ENV) or sw.artifacts.store


def create_study(sw: Sweep, runs_root: Path) -> Any:
    """The study of a sweep file, created on first use, with the file's sampler seed."""
    return _open_study(sw, runs_root, sampling=False)[0]


def worker_study(sw: Sweep, runs_root: Path) -> tuple[Any, int]:
    """The study as a sampling worker opens it, and its sampler seed: `sampler.seed + slot`, where the
    slot is a counter the storage hands out under the claim lock. Workers on any machine, and every
    resume, so draw different random sequences by construction (not from a local worker index)."""
    return _open_study(sw, runs_root, sampling=True)


def _open_study(sw: Sweep, runs_root: Path, sampling: bool) -> tuple[Any, int]:
    import optuna

    from experiments import study as st

    rdb = st.storage(storage_url(sw, runs_root), sw.faults.heartbeat_interval, sw.faults.grace_period,
                     sw.faults.max_retries)  # fmt: skip
    base = trial_experiment(sw, {})
    probe = optuna.create_study(study_name=sw.name, storage=rdb, directions=sw.directions,
                                load_if_exists=True)  # fmt: skip
    seed = sw.sampler_seed
    if sampling:
        claim = st.ClaimLock(rdb, sw.name)
        claim.acquire()
        try:
            slot = rdb.get_study_system_attrs(probe._study_id).get(SLOTS_ATTR, 0)
            rdb.set_study_system_attr(probe._study_id, SLOTS_ATTR, slot + 1)
        finally:
            claim.release()
        seed += slot
    study = optuna.load_study(study_name=sw.name, storage=rdb,
                              sampler=st.sampler(dataclasses.replace(sw, sampler_seed=seed)),
                              # a cross-validated trial reports once per fold, not per epoch
                              pruner=st.pruner(sw, base.eval.folds if base.eval.folds > 1
                                               else base.trainer.max_epochs))  # fmt: skip
    location = artifacts_location(sw)
    if location and study.user_attrs.get(record_store.STUDY_ATTR) != location:
        study.set_user_attr(record_store.STUDY_ATTR, location)  # how other machines find the records
    if "metrics" not in study.user_attrs:
        study.set_user_attr("metrics", [m.model_dump(exclude_none=True) for m in sw.objectives])
        study.set_user_attr("sweep_file", str(sw.source))
        study.set_user_attr("base_experiment_id", experiment_id(base))
    return study, seed


def _counts(study: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _metric_value(metrics: dict[str, Any], name: str) -> float:
    v = metrics.get(name)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        raise ValueError(f"the run record has no value for {name!r} (got {v!r})")
    return float(v)


@dataclass
class _Running:
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


def lost_peer(exc: BaseException) -> bool:
    """Whether a collective failed because another rank is gone (killed, crashed) rather than for a
    reason of this rank's own: gloo and NCCL report it as a closed or reset connection."""
    import torch.distributed as dist

    text = str(exc)
    return isinstance(exc, dist.DistError) or (isinstance(exc, RuntimeError) and any(
        k in text for k in ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "NCCL")))  # fmt: skip


def _epoch_monitor(sw: Sweep) -> str | None:
    """The metric a trial reports each epoch (for the pruner and the learning curves), or None; the
    same answer on every rank."""
    base = trial_experiment(sw, {})
    # Optuna takes intermediate values only for one objective; with pruner none they still draw the
    # dashboard's learning curves (NopPruner never stops a trial)
    if not sw.multi_objective and sw.objectives[0].name in per_epoch_metrics(base.task):
        return sw.objectives[0].name
    return None


def make_objective(sw: Sweep, runs_root: Path, worker: int, console: Console, claim: Any, group: Any,
                   running: _Running) -> Any:  # fmt: skip
    from optuna_integration import TorchDistributedTrial

    from experiments import study as st
    from experiments.rank_group import DistributedPruning
    from experiments.train import train

    monitor = _epoch_monitor(sw)
    location = artifacts_location(sw)
    store = record_store.open_store(location) if location else None

    def share(trial: Any, exp_id: str) -> None:
        """The trial's record into the study's artifact store; a failure here is reported, not fatal."""
        if store is None:
            return
        try:
            record_store.upload_record(store, trial, runs_root / exp_id, sw.artifacts.weights)
        except Exception as exc:  # noqa: BLE001 - the trial itself is done; say what was not shared
            trial.set_user_attr("artifacts_error", f"{type(exc).__name__}: {exc}"[:500])
            console.print(f"[yellow]trial {trial.number}: its record was not uploaded:[/] {exc}")

    def objective(trial: Any) -> float | list[float]:
        claim.release()  # the trial exists now (RUNNING): other workers may claim the next one
        running.trial = trial
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("pid", os.getpid())
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:  # the GPUs this worker owns
            trial.set_user_attr("devices", os.environ["CUDA_VISIBLE_DEVICES"])
        if group.world > 1:
            trial.set_user_attr("ranks", group.world)
        try:
            # on K devices every rank samples through TorchDistributedTrial: rank 0's values for all
            values = st.suggest(TorchDistributedTrial(trial) if group.world > 1 else trial, sw)
            try:
                cfg = trial_experiment(sw, values)
            except EcomlabError as exc:
                raise ValueError(f"invalid parameter combination: {exc}") from None
            exp_id = experiment_id(cfg)
            trial.set_user_attr("experiment_id", exp_id)
            _say_trial(console, group, trial.number, exp_id, values)
            done = runs_root / exp_id / "metrics.json"
            if group.share(done.is_file()):
                # The same configuration already ran (another trial, or an earlier sweep): reuse it.
                metrics = json.loads(done.read_text())
                trial.set_user_attr("reused_record", True)
            else:
                callbacks = [DistributedPruning(trial, monitor)] if monitor else []
                try:
                    metrics = train(cfg, runs_root, console=console, extra_callbacks=callbacks,
                                    extra_config={"study": sw.name, "trial": trial.number, **values})  # fmt: skip
                except Exception as exc:
                    import optuna

                    running.broken = group.world > 1 and not isinstance(exc, optuna.TrialPruned)
                    raise
            # one write, not one per metric: each attribute is a storage transaction
            trial.set_user_attr("metrics", {k: v for k, v in metrics.items()
                                            if k.startswith(RECORDED_METRICS) and v is not None})  # fmt: skip
            share(trial, exp_id)
            out = [_metric_value(metrics, m.name) for m in sw.objectives]
            return out if sw.multi_objective else out[0]
        except Exception as exc:
            import optuna

            if isinstance(exc, optuna.TrialPruned):
                share(trial, trial.user_attrs["experiment_id"])
                raise
            # on K devices a rank that failed on its own has already written its reason; keep it
            stored = trial.study._storage.get_trial(trial._trial_id).user_attrs.get("error")
            if group.world > 1 and stored:
                raise
            if group.world > 1 and lost_peer(exc):  # a rank was killed: FAIL, and queued again
                running.requeueing.acquire()
                running.lost_rank = trial._trial_id
                # with the monitor killed, another rank's watchdog may end it before this one's does
                why = running.orphaned() or f"a rank of the group is gone: {type(exc).__name__}: {exc}"
                trial.set_user_attr("error", why[:1000])
            else:
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:1000])
            raise
        finally:
            running.trial = None

    return objective


def _say_trial(console: Console, group: Any, number: int, exp_id: str, values: dict[str, Any]) -> None:
    where = f"rank {group.rank}/{group.world}: " if group.world > 1 else ""
    console.print(f"{where}trial {number}, experiment {exp_id}, params {json.dumps(values, sort_keys=True)}",
                  highlight=False, soft_wrap=True)  # fmt: skip


def _follow(sw: Sweep, runs_root: Path, group: Any, console: Console) -> int:
    """Rank r > 0 of a K-device worker: run each trial rank 0 hands out, until it says stop."""
    import optuna
    from optuna_integration import TorchDistributedTrial

    from experiments import study as st
    from experiments.rank_group import DistributedPruning
    from experiments.train import train

    study = optuna.load_study(study_name=sw.name, storage=st.storage(storage_url(sw, runs_root)))
    monitor = _epoch_monitor(sw)
    ran = 0
    while True:
        order = group.share()
        if order == "stop":
            return ran
        if order != "run":
            continue  # rank 0 is waiting for trials running elsewhere
        trial = TorchDistributedTrial(None)
        values = st.suggest(trial, sw)
        try:
            cfg = trial_experiment(sw, values)
        except EcomlabError:
            continue  # rank 0 fails this trial the same way, before any collective
        _say_trial(console, group, trial.number, experiment_id(cfg), values)
        if group.share():
            continue  # rank 0 reuses a finished record of the same experiment
        try:
            train(cfg, runs_root, console=console,
                  extra_callbacks=[DistributedPruning(None, monitor)] if monitor else [],
                  extra_config={"study": sw.name, "trial": trial.number, **values})  # fmt: skip
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


def fail_trial(study: Any, number: int, reason: str, retry: int | None = None) -> None:
    """Mark a RUNNING trial FAIL with `reason` (from any process); with `retry`, queue it again as
    Optuna's heartbeat does for a dead worker (RetryHeartbeatStaleTrialCallback, up to `retry` times)."""
    import optuna

    storage = study._storage
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    if storage.get_trial(trial_id).state != optuna.trial.TrialState.RUNNING:
        return
    storage.set_trial_user_attr(trial_id, "error", reason[:1000])
    try:
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # it ended meanwhile
    if retry is not None:
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retry)(study, storage.get_trial(trial_id))


def effective_budget(sw: Sweep, n_trials: int | None = None) -> int | None:
    """Finished trials to reach; a grid has no more points than its size."""
    budget = n_trials or sw.budget.n_trials
    if sw.sampler == "grid":
        from experiments.study import grid_space

        size = math.prod(len(v) for v in grid_space(sw).values())
        budget = min(budget, size) if budget else size
    return budget


def target_reached(study: Any, sw: Sweep) -> bool:
    """Whether a complete trial reached the single objective's `target` (W&B's metric.target)."""
    target = sw.objectives[0].target
    if target is None or sw.multi_objective:
        return False
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    maximize = sw.objectives[0].goal == "maximize"
    return any(t.value is not None and (t.value >= target if maximize else t.value <= target) for t in done)


def run_worker(sweep_file: Path, runs_root: Path, worker: int, deadline: float | None,
               n_trials: int | None = None, console: Console | None = None, watch_parent: bool = False) -> int:  # fmt: skip
    """One worker: claim and run trials until the study has its finished trials or time is up.

    On K devices this runs in each of the worker's K rank processes (see `experiments.rank_group`):
    rank 0 claims, asks and records; the others follow. `watch_parent`: stop when the process that
    started this one (the `ecomlab sweep` monitor) is gone, failing the running trial for a retry.
    """

    from experiments import study as st
    from experiments.rank_group import RankGroup

    console = console or Console()
    sw = load_sweep(sweep_file)
    group = RankGroup.from_env()
    running = _Running()
    if watch_parent:
        _watch_parent(running, sw, group)
    group.open(sw.faults.rank_timeout)
    if not group.primary:
        return _follow(sw, runs_root, group, console)
    budget = effective_budget(sw, n_trials)
    study, seed = worker_study(sw, runs_root)
    running.study = study
    claim = st.ClaimLock(study._storage._backend, sw.name)
    objective = make_objective(sw, runs_root, worker, console, claim, group, running)
    ran = 0
    while True:
        order = _next_order(study, sw, budget, deadline, claim)  # "run" leaves the claim held
        group.share(order)
        if order == "stop":
            break
        if order == "wait":
            time.sleep(min(2.0, sw.faults.heartbeat_interval))  # the rest runs elsewhere; one may fail
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,))
        finally:
            claim.release()  # if the trial could not even start
        ran += 1
        if running.lost_rank is not None:  # retried as Optuna retries the trial of a dead worker
            import optuna

            try:
                optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=sw.faults.max_retries)(
                    study, study._storage.get_trial(running.lost_rank)
                )
            finally:
                running.lost_rank = None
                running.requeueing.release()
        if running.broken:  # a rank failed inside training: the other ranks may sit in a collective
            console.print(f"worker {worker}: a trial failed on {group.world} devices; the group restarts")
            raise SystemExit(GROUP_RESTART)
    return ran


def _next_order(study: Any, sw: Sweep, budget: int | None, deadline: float | None, claim: Any) -> str:
    """Under the claim lock: "stop" (budget, target or time reached), "wait" (the rest of the budget is
    running elsewhere) or "run" (and the lock stays held until the new trial is RUNNING)."""
    import optuna

    if deadline is not None and time.time() >= deadline:
        return "stop"
    claim.acquire()
    optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAIL, and re-queued
    counts = _counts(study)
    finished = sum(counts.get(s, 0) for s in FINISHED)
    running = counts.get("RUNNING", 0)
    order = "run"
    if budget is not None and finished >= budget:
        order = "stop"
    elif target_reached(study, sw):  # W&B's metric.target: no new trial once one reached it
        order = "stop"
    elif budget is not None and finished + running >= budget:
        order = "wait"
    if order != "run":
        claim.release()
    return order


def _watch_parent(running: _Running, sw: Sweep, group: Any) -> None:
    """A thread that ends this worker when its monitor is gone (SIGKILL, a closed terminal): the
    running trial is failed and queued for a retry (rank 0), then the process exits at once."""
    import threading

    running.parent = os.getppid()

    def watch() -> None:
        while (why := running.orphaned()) is None:
            time.sleep(1.0)
        running.requeueing.acquire(timeout=30)  # a lost rank's trial being queued again: let it finish
        trial, study = running.trial, running.study
        if group.primary and trial is not None and study is not None:
            with contextlib.suppress(Exception):
                fail_trial(study, trial.number, why, retry=sw.faults.max_retries)
        os._exit(1)

    threading.Thread(target=watch, name="ecomlab-parent-watch", daemon=True).start()


@dataclass
class WorkerProc:
    """One worker: a process, or on K devices a group of K rank processes (rank 0 first)."""

    index: int
    ranks: list[subprocess.Popen]
    log: Path
    restarts: int = 0

    @property
    def proc(self) -> subprocess.Popen:
        return self.ranks[0]

    def poll(self) -> int | None:
        """None while the worker runs; else its exit status (the first rank's that is not 0). A group
        whose rank ended badly is stopped whole: its other ranks may be waiting in a collective."""
        codes = [r.poll() for r in self.ranks]
        bad = [c for c in codes if c not in (None, 0)]
        if bad:
            self.stop(signal.SIGTERM, grace=3.0)
            return bad[0]
        return None if None in codes else 0

    def stop(self, sig: int, grace: float) -> None:
        for r in self.ranks:
            if r.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    r.send_signal(sig)
        end = time.time() + grace
        for r in self.ranks:
            with contextlib.suppress(subprocess.TimeoutExpired):
                r.wait(timeout=max(0.1, end - time.time()))
        for r in self.ranks:
            if r.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    r.kill()
                r.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(sweep_file: Path, runs_root: Path, index: int, deadline: float | None, n_trials: int | None,
           threads: int, devices: list[str] | None, log: Path, ranks: int = 1) -> list[subprocess.Popen]:  # fmt: skip
    """Start a worker: one process, or K rank processes with torchrun's environment (so Lightning's
    DDP uses them as they are) and a fresh rendezvous port on 127.0.0.1."""
    env = dict(os.environ)
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK",
              "MASTER_ADDR", "MASTER_PORT"):  # fmt: skip
        env.pop(k, None)
    env["ECOMLAB_WORKER_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    cmd = [sys.executable, "-m", "experiments.sweep_worker", str(sweep_file), "--runs-dir", str(runs_root),
           "--worker", str(index)]  # fmt: skip
    if deadline is not None:
        cmd += ["--deadline", str(deadline)]
    if n_trials is not None:
        cmd += ["--n-trials", str(n_trials)]
    log.parent.mkdir(parents=True, exist_ok=True)
    port = _free_port() if ranks > 1 else None
    procs = []
    for rank in range(ranks):
        if ranks > 1:
            env.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(ranks),
                        "LOCAL_WORLD_SIZE": str(ranks), "GROUP_RANK": "0", "NODE_RANK": "0",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
        out = open(log if rank == 0 else log.with_suffix(f".rank{rank}.log"), "ab")
        # Own session: a Ctrl-C in the terminal reaches only the monitor, which forwards exactly one
        # SIGINT, so a worker is never interrupted again while Optuna records its trial as failed.
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(env),
                                      start_new_session=True))  # fmt: skip
        out.close()
    return procs


def ranks_per_trial(sw: Sweep) -> int:
    """Processes per worker: the base config's trainer.devices (one trial spans them, DDP)."""
    t = trial_experiment(sw, {}).trainer
    if t.devices == 1:
        return 1
    if any(p.path in ("trainer.devices", "trainer.num_nodes", "trainer.strategy") for p in sw.params):
        raise EcomlabError("A sweep whose trials run on several devices cannot search trainer.devices, "
                           "num_nodes or strategy: every trial of a worker runs on the same K devices.")  # fmt: skip
    if t.num_nodes > 1:
        raise EcomlabError(f"trainer.num_nodes: {t.num_nodes} in a sweep: one trial across machines is "
                           "`ecomlab run` under torchrun or SLURM (docs/cluster.md); a sweep's workers "
                           "spread over machines through the storage instead.")  # fmt: skip
    if t.strategy in ("ddp_spawn",):
        raise EcomlabError("trainer.strategy: ddp_spawn in a sweep: its workers start their ranks "
                           "themselves; use ddp (or auto).")  # fmt: skip
    return t.devices


def plan_devices(workers: int, per_trial: int | None, sw: Sweep) -> list[list[str]] | None:
    """CUDA devices for each worker, K per trial and never shared; None on CPU. K defaults to the base
    config's trainer.devices, and must equal it, so that a trial trains on all the devices its worker
    owns (and its experiment id says how many that was)."""
    import torch

    if not torch.cuda.is_available():
        return None
    base_devices = trial_experiment(sw, {}).trainer.devices
    searched = any(p.path == "trainer.devices" for p in sw.params)
    if per_trial is None:
        per_trial = base_devices
    elif per_trial != base_devices and not searched:
        raise EcomlabError(f"--devices-per-trial {per_trial}, but the base config's trainer.devices is "
                           f"{base_devices}, so each trial would train on {base_devices} of its {per_trial} GPUs; "
                           f"set trainer.devices: {per_trial} in the base config.")  # fmt: skip
    n = torch.cuda.device_count()
    if workers * per_trial > n:
        raise EcomlabError(f"--workers {workers} x --devices-per-trial {per_trial} needs {workers * per_trial} "
                           f"GPUs; this machine has {n}.")  # fmt: skip
    return [[str(i * per_trial + j) for j in range(per_trial)] for i in range(workers)]


def run_sweep(sweep_file: Path | Sweep, runs_root: Path, workers: int = 1, devices_per_trial: int | None = None,
              n_trials: int | None = None, console: Console | None = None, baseline: bool = True) -> Any:  # fmt: skip
    """Start `workers` workers on the study and show a live view until they are done. `sweep_file`
    may be the already loaded Sweep (the CLI loads and checks it once).

    A worker whose trials run on K devices is K rank processes. SIGTERM and SIGHUP (a closed
    terminal) stop the sweep like Ctrl-C; if the monitor is killed outright, its workers notice
    within a second and stop, failing their trials for a retry on resume."""
    from rich.live import Live

    console = console or Console()
    sw = sweep_file if isinstance(sweep_file, Sweep) else load_sweep(sweep_file)
    sweep_file = sw.source
    k = ranks_per_trial(sw)
    study = create_study(sw, runs_root)
    budget = effective_budget(sw, n_trials)
    deadline = time.time() + sw.budget.timeout if sw.budget.timeout else None
    gpus = plan_devices(workers, devices_per_trial, sw)
    threads = max(1, (os.cpu_count() or 1) // (workers * k))
    folder = sweep_dir(runs_root, sw.name)

    def spawn(i: int) -> list[subprocess.Popen]:
        return _spawn(sweep_file, runs_root, i, deadline, n_trials, threads, gpus[i] if gpus else None,
                      folder / f"worker-{i}.log", ranks=k)  # fmt: skip

    procs = [WorkerProc(i, spawn(i), folder / f"worker-{i}.log") for i in range(workers)]
    console.print(f"Study [bold]{sw.name}[/] ({storage_url(sw, runs_root).split('://')[0]}), "
                  f"{workers} worker(s)" + (f" of {k} ranks (DDP)" if k > 1 else "")
                  + f", {threads} CPU thread(s) each" + (f", GPUs {gpus}" if gpus else "")
                  + f"; logs in {folder}/")  # fmt: skip
    interrupted = False
    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    warm_up = threading.Thread(target=_import_for_the_summary, args=(sw,), daemon=True)
    try:
        if baseline:  # while the workers start (imports, data); on a cold cache one cleaning serves both
            study_baseline(study, sw, console)
        warm_up.start()
        with Live(
            _view(study, sw, budget, procs), console=console, refresh_per_second=2, transient=False
        ) as live:
            while True:
                alive = False
                for w in procs:
                    rc = w.poll()
                    if rc is None:
                        alive = True
                    elif (
                        rc != 0
                        and rc != 130
                        and (rc == GROUP_RESTART or w.restarts < sw.faults.max_retries + 1)
                    ):
                        finished = sum(_counts(study).get(s, 0) for s in FINISHED)
                        if budget is None or finished < budget:
                            # a killed or crashed worker: its trial is retried through the heartbeat;
                            # a K-device group whose trial failed (recorded FAIL) starts afresh
                            w.restarts += rc != GROUP_RESTART
                            w.ranks = spawn(w.index)
                            alive = True
                live.update(_view(study, sw, budget, procs))
                if not alive:
                    break
                time.sleep(0.5)
    except KeyboardInterrupt:
        interrupted = True
        for w in procs:
            w.stop(signal.SIGINT, grace=60)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    console.print()  # the live view leaves the cursor on its last line
    if warm_up.is_alive():
        warm_up.join()
    show_study(study, console, baseline=baseline)
    if not interrupted:
        _log_study(study, sw, folder, console)
    if interrupted:
        console.print(
            f"[yellow]Interrupted.[/] Finished trials are kept; run `ecomlab sweep {sweep_file}` to resume."
        )
        raise KeyboardInterrupt
    return study


def _import_for_the_summary(sw: Sweep) -> None:
    """Import, while the workers train, what the end of a sweep needs: the summary's baseline lines
    (torch), the parameter importances (scikit-learn) and the study-level W&B run (wandb, and the
    launch-input models that `wandb.init` builds), about 5 s that a user would otherwise wait for
    after the last trial. Only imports: nothing starts and nothing is written."""
    from experiments import tracking

    try:
        import optuna.importance._fanova  # noqa: F401 - scikit-learn's forests

        from experiments import baseline  # noqa: F401 - torch

        if tracking.resolve_mode(trial_experiment(sw, {}).tracking) != "disabled":
            import wandb.sdk.launch.inputs.internal  # noqa: F401
    except Exception:  # noqa: BLE001 - the summary imports them again and reports any real error
        pass


def study_baseline(study: Any, sw: Sweep, console: Console) -> dict[str, Any] | None:
    """Fit the task's baseline on the base config's split (once; cached) and keep it on the study,
    where `study show`, `report`, `compare` and the W&B study run read it. A baseline that cannot be
    fitted is reported and the sweep goes on."""
    from experiments import baseline

    try:
        result = baseline.compute(trial_experiment(sw, {}), console)
    except Exception as exc:  # noqa: BLE001 - the baseline is a reference, never a reason to stop a sweep
        console.print(f"[yellow]The baseline was not fitted:[/] {type(exc).__name__}: {exc}")
        return None
    if result is not None:
        searched = sorted(p.path for p in sw.params if p.path.startswith("data."))
        if searched:
            result["note"] = (
                f"fitted on the base config's split; the sweep also searches {', '.join(searched)}"
            )
        study.set_user_attr("baseline", {k: v for k, v in result.items() if k != "cache_hit"})
    return result


def baseline_lines(study: Any, trial: Any | None) -> list[str]:
    """ "val/f1 0.89 vs baseline 0.87 (...): +0.02, better" for the objectives and their test twins."""
    from experiments.baseline import versus

    base = study.user_attrs.get("baseline")
    metrics = study.user_attrs.get("metrics") or []
    if not base:
        return []
    if trial is None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in base["metrics"].items())
        return [f"Baseline {base['name']}: {shown}"]
    recorded = trial.user_attrs.get("metrics") or {}
    lines = []
    for i, m in enumerate(metrics):
        names = [m["name"]] + (
            [m["name"].replace("val/", "test/", 1)] if m["name"].startswith("val/") else []
        )
        for name in names:
            value = trial.values[i] if name == m["name"] else recorded.get(name)
            line = versus(value, base, name, m["goal"])
            if line:
                lines.append(f"best trial {trial.number}: {line}")
    if base.get("note"):
        lines.append(f"(baseline {base['note']})")
    return lines


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _log_study(study: Any, sw: Sweep, folder: Path, console: Console) -> None:
    """The study-level W&B run; a tracking failure here never loses the finished study."""
    from experiments import tracking

    base = trial_experiment(sw, {})
    try:
        run_id = tracking.log_study(study, base.tracking, folder, [f"study:{sw.name}"])
    except Exception as exc:  # noqa: BLE001 - every trial is already stored; report and go on
        console.print(f"[yellow]The study-level W&B run was not written:[/] {type(exc).__name__}: {exc}")
        return
    if run_id:
        console.print(
            f"Study-level W&B run {run_id} ({tracking.resolve_mode(base.tracking)}) in {folder}/wandb"
        )


def _view(study: Any, sw: Sweep, budget: int | None, procs: list[WorkerProc]) -> Any:
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    trials = study.get_trials(deepcopy=False)
    counts = _counts(study)
    finished = sum(counts.get(s, 0) for s in FINISHED)
    best = "-"
    if not sw.multi_objective:
        done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
        if done:
            pick = max if sw.objectives[0].goal == "maximize" else min
            b = pick(done, key=lambda t: t.value)
            best = f"{b.value:.4f} (trial {b.number})"
    else:
        best = f"Pareto front: {len(study.best_trials) if finished else 0} trial(s)"
    head = Table.grid(padding=(0, 1))
    head.add_row(ProgressBar(total=budget or max(finished, 1), completed=finished, width=40),
                 f"{finished}/{budget or '∞'} finished", f"{counts.get('PRUNED', 0)} pruned",
                 f"{counts.get('FAIL', 0)} failed", f"best {sw.objectives[0].name}: {best}")  # fmt: skip
    table = Table(title=None, box=None)
    for col in ("worker", "pid", "state", "trial", "restarts"):
        table.add_column(col)
    running = {t.user_attrs.get("pid"): t for t in trials if t.state.name == "RUNNING"}
    for w in procs:
        rc = w.proc.poll()
        t = running.get(w.proc.pid)
        state = "running" if t else ("starting / waiting" if rc is None else f"exited ({rc})")
        table.add_row(str(w.index), str(w.proc.pid), state, str(t.number) if t else "-", str(w.restarts))
    return Group(head, table)


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        rows.append({"number": t.number, "state": t.state.name, "params": t.params,
                     "values": t.values, "duration_s": duration, "experiment_id": t.user_attrs.get("experiment_id"),
                     "user_attrs": t.user_attrs, "system_attrs": t.system_attrs})  # fmt: skip
    return rows


def show_study(study: Any, console: Console, baseline: bool = True) -> None:
    from rich.table import Table

    metrics = study.user_attrs.get("metrics") or [{"name": "value", "goal": "maximize"}]
    rows = trial_rows(study)
    names = sorted({k for r in rows for k in r["params"]})
    table = Table(title=f"Study {study.study_name}: {len(rows)} trial(s)")
    for col in ("#", "state", *names, *(m["name"] for m in metrics), "time", "experiment id"):
        table.add_column(col, overflow="fold")
    for r in rows:
        vals = r["values"] or [None] * len(metrics)
        note = r["user_attrs"].get("error") if r["state"] == "FAIL" else None
        state = r["state"] + (f" ({note[:40]})" if note else "")
        if "failed_trial" in r["system_attrs"]:
            state += f" retry of {r['system_attrs']['failed_trial']}"
        table.add_row(str(r["number"]), state, *(fmt_value(r["params"].get(n)) for n in names),
                      *(fmt_value(v) for v in vals), fmt_value(r["duration_s"], 1), r["experiment_id"] or "-")  # fmt: skip
    (console if console.is_terminal else Console(width=200, file=console.file)).print(table)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    if not complete:
        console.print("No completed trial yet.")
        return
    if len(metrics) == 1:
        b = study.best_trial
        console.print(f"Best: trial {b.number}, {metrics[0]['name']} = {b.value:.4f}, "
                      f"experiment {b.user_attrs.get('experiment_id')}: {_fmt_params(b.params)}")  # fmt: skip
        for line in baseline_lines(study, b) if baseline else []:
            console.print(line)
    else:
        front = []
        for t in study.best_trials:
            vals = ", ".join(f"{m['name']}={v:.4g}" for m, v in zip(metrics, t.values))
            front.append(f"trial {t.number} ({vals}, experiment {t.user_attrs.get('experiment_id')})")
        console.print("Pareto front: " + "; ".join(front))
        for line in baseline_lines(study, None) if baseline else []:
            console.print(line)
    console.print(
        f"Next: `ecomlab report {study.study_name} --out {study.study_name}.html`, "
        f"`ecomlab study best {study.study_name} --export best.yaml`, "
        f"`ecomlab dashboard {study.study_name}`, `ecomlab reproduce <experiment id>`."
    )


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in params.items())


def export_best(study: Any, runs_root: Path, out: Path) -> str:
    """Write the best trial's resolved config (from its run record); return its experiment id."""
    metrics = study.user_attrs.get("metrics") or []
    if len(metrics) > 1:
        raise EcomlabError(f"Study {study.study_name} is multi-objective: pick a trial from the Pareto front "
                           "(`ecomlab study show`) and use its run record's config.yaml.")  # fmt: skip
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        raise EcomlabError(f"Study {study.study_name} has no completed trial yet.")
    best = study.best_trial
    exp_id = best.user_attrs.get("experiment_id")
    rec = run_record.read(runs_root, exp_id)
    run_record.write_yaml(out, rec.config, header=f"# ecomlab run {out}\n# best trial {best.number} of study "
                          f"{study.study_name}: {metrics[0]['name']} = {best.value:.4f}, experiment {exp_id}")  # fmt: skip
    return exp_id
