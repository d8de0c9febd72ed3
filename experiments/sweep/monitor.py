"""`ecomlab sweep`: the monitor. It starts N workers on the study (each one process, or K rank
processes for trials on K devices), shows a live view, replaces workers that die, and ends with the
study's summary and its study-level W&B run.

Workers claim trials under the storage's claim lock (`sweep.claim`), so together, on any number of
machines, they start exactly the budgeted number of finished (complete or pruned) trials; failed
trials do not use up the budget. Storage heartbeats mark the trial of a killed worker FAIL after the
grace period, and Optuna's RetryHeartbeatStaleTrialCallback queues it again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.core.errors import EcomlabError
from experiments.results.storage import STORAGE_ENV
from experiments.sweep.claim import counts, effective_budget, finished
from experiments.sweep.file import DEVICE_KEYS, Sweep, load_sweep
from experiments.sweep.objective import WORKER_TOKEN_ENV
from experiments.sweep.study import (
    check_unchanged,
    open_study,
    run_first,
    storage_url,
    study_baseline,
    sweep_dir,
)
from experiments.sweep.summary import log_study, save_note, show_study, test_the_best
from experiments.sweep.worker import GROUP_RESTART


@dataclass
class WorkerProc:
    """One worker: a process, or on K devices a group of K rank processes (rank 0 first).

    `token` names this start of the worker on its trials (`objective.WORKER_TOKEN_ATTR`), so the
    monitor that sees it die fails exactly its trial. `deaths_in_a_row` counts the deaths with no
    trial of the study finishing in between: the crash-loop guard (`faults.crash_loop`).
    """

    index: int
    ranks: list[subprocess.Popen]
    log: Path
    token: str
    restarts: int = 0
    deaths_in_a_row: int = 0
    finished_at_last_death: int = -1
    given_up: str | None = None  # why the monitor stopped restarting it

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


def _spawn(
    sweep_file: Path,
    runs_root: Path,
    index: int,
    deadline: float | None,
    n_trials: int | None,
    threads: int,
    devices: list[str] | None,
    log: Path,
    token: str,
    study_name: str,
    ranks: int = 1,
    test_every_trial: bool = False,
) -> list[subprocess.Popen]:
    """Start a worker: one process, or K rank processes with torchrun's environment (so Lightning's
    DDP uses them as they are) and a fresh rendezvous port on 127.0.0.1."""
    env = dict(os.environ)
    env[WORKER_TOKEN_ENV] = token
    for k in (
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "LOCAL_WORLD_SIZE",
        "GROUP_RANK",
        "NODE_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
    ):
        env.pop(k, None)
    env["ECOMLAB_WORKER_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    cmd = [
        sys.executable,
        "-m",
        "experiments.sweep.worker",
        str(sweep_file),
        "--runs-dir",
        str(runs_root),
        "--worker",
        str(index),
        "--study-name",
        study_name,
    ]
    if test_every_trial:
        cmd.append("--test-every-trial")
    if deadline is not None:
        cmd += ["--deadline", str(deadline)]
    if n_trials is not None:
        cmd += ["--n-trials", str(n_trials)]
    log.parent.mkdir(parents=True, exist_ok=True)
    port = _free_port() if ranks > 1 else None
    procs = []
    for rank in range(ranks):
        if ranks > 1:
            env.update(
                {
                    "RANK": str(rank),
                    "LOCAL_RANK": str(rank),
                    "WORLD_SIZE": str(ranks),
                    "LOCAL_WORLD_SIZE": str(ranks),
                    "GROUP_RANK": "0",
                    "NODE_RANK": "0",
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(port),
                }
            )
        out = open(log if rank == 0 else log.with_suffix(f".rank{rank}.log"), "ab")
        # Own session: a Ctrl-C in the terminal reaches only the monitor, which forwards exactly one
        # SIGINT, so a worker is never interrupted again while Optuna records its trial as failed.
        procs.append(
            subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(env), start_new_session=True)
        )
        out.close()
    return procs


def ranks_per_trial(sw: Sweep) -> int:
    """Processes per worker: the base config's trainer.devices (one trial spans them, DDP)."""
    t = sw.base_experiment.trainer
    if t.devices == 1:
        return 1
    if searched := [
        p.path for top in sw.searched for p in top.flat() if p.searched and p.path in DEVICE_KEYS
    ]:
        raise EcomlabError(
            f"parameters.{searched[0]}: a sweep whose trials run on several devices cannot search "
            "trainer.devices, num_nodes or strategy (every trial of a worker runs on the same K devices); "
            "put the value in `base` (or pin it in `parameters`)."
        )
    if t.num_nodes > 1:
        raise EcomlabError(
            f"trainer.num_nodes: {t.num_nodes} in a sweep: one trial across machines is `ecomlab run` under "
            "torchrun or SLURM (docs/cluster.md); a sweep's workers spread over machines through the storage "
            "instead."
        )
    if t.strategy in ("ddp_spawn",):
        raise EcomlabError(
            "trainer.strategy: ddp_spawn in a sweep: its workers start their ranks themselves; use ddp (or auto)."
        )
    return t.devices


def plan_devices(workers: int, per_trial: int | None, sw: Sweep) -> list[list[str]] | None:
    """CUDA devices for each worker, K per trial and never shared; None on CPU. K defaults to the base
    config's trainer.devices, and must equal it, so that a trial trains on all the devices its worker
    owns (and its experiment id says how many that was)."""
    import torch

    if not torch.cuda.is_available():
        return None
    base_devices = sw.base_experiment.trainer.devices
    searched = any(p.path == "trainer.devices" for p in sw.searched)
    if per_trial is None:
        per_trial = base_devices
    elif per_trial != base_devices and not searched:
        raise EcomlabError(
            f"--devices-per-trial {per_trial}, but the base config's trainer.devices is {base_devices}, so "
            f"each trial would train on {base_devices} of its {per_trial} GPUs; set trainer.devices: "
            f"{per_trial} in the base config."
        )
    n = torch.cuda.device_count()
    if workers * per_trial > n:
        raise EcomlabError(
            f"--workers {workers} x --devices-per-trial {per_trial} needs {workers * per_trial} GPUs; this "
            f"machine has {n}."
        )
    return [[str(i * per_trial + j) for j in range(per_trial)] for i in range(workers)]


class SweepIncomplete(EcomlabError):
    """A sweep that ended short of its budget: how many trials are left, why, and how to resume."""

    exit_code = 3


@dataclass
class Plan:
    """How a monitor runs its workers: K ranks each, the budget, the deadline, devices and threads."""

    sw: Sweep
    runs_root: Path
    workers: int
    ranks: int
    budget: int | None
    deadline: float | None
    gpus: list[list[str]] | None
    threads: int
    n_trials: int | None

    @property
    def folder(self) -> Path:
        return sweep_dir(self.runs_root, self.sw.name)

    def spawn(self, index: int) -> WorkerProc:
        token = f"{socket.gethostname()}:{os.getpid()}:{index}:{uuid.uuid4().hex[:12]}"
        log = self.folder / f"worker-{index}.log"
        devices = self.gpus[index] if self.gpus else None
        ranks = _spawn(
            self.sw.source,
            self.runs_root,
            index,
            self.deadline,
            self.n_trials,
            self.threads,
            devices,
            log,
            token,
            self.sw.name,
            ranks=self.ranks,
            test_every_trial=self.sw.test_every_trial,
        )
        return WorkerProc(index, ranks, log, token)

    def respawn(self, w: WorkerProc) -> None:
        new = self.spawn(w.index)
        w.ranks, w.token, w.restarts = new.ranks, new.token, w.restarts + 1


def plan(
    sw: Sweep, runs_root: Path, workers: int, devices_per_trial: int | None, n_trials: int | None
) -> Plan:
    k = ranks_per_trial(sw)
    deadline = time.time() + sw.spec.budget.timeout if sw.spec.budget.timeout else None
    gpus = plan_devices(workers, devices_per_trial, sw)
    threads = max(1, (os.cpu_count() or 1) // (workers * k))
    return Plan(sw, runs_root, workers, k, effective_budget(sw, n_trials), deadline, gpus, threads, n_trials)


def run_sweep(
    sweep_file: Path | Sweep,
    runs_root: Path,
    workers: int = 1,
    devices_per_trial: int | None = None,
    n_trials: int | None = None,
    console: Console | None = None,
    baseline: bool = True,
    allow_changed: bool = False,
) -> Any:
    """Start `workers` workers on the study and show a live view until they are done; returns the
    study. `sweep_file` may be the already loaded Sweep (the CLI loads and checks it once). A study
    created by another version of the file is refused unless `allow_changed` (`study.check_unchanged`).

    A worker whose trials run on K devices is K rank processes. A worker that dies is restarted for
    as long as the study makes progress, and its trial is failed at once and queued again (up to
    `faults.max_retries` times). SIGTERM and SIGHUP (a closed terminal) stop the sweep like Ctrl-C; if
    the monitor is killed outright, its workers notice within a second and stop, failing their trials
    for a retry on resume. A sweep that ends short of its budget raises `SweepIncomplete`."""
    console = console or Console()
    sw = sweep_file if isinstance(sweep_file, Sweep) else load_sweep(sweep_file)
    p = plan(sw, runs_root, workers, devices_per_trial, n_trials)
    study = open_study(sw, runs_root, sampling=False)[0]
    check_unchanged(study, sw, allow_changed)
    run_first(study, sw, console)
    procs = [p.spawn(i) for i in range(workers)]
    console.print(
        f"Study [bold]{sw.name}[/] ({storage_url(sw, runs_root).split('://')[0]}), {workers} worker(s)"
        + (f" of {p.ranks} ranks (DDP)" if p.ranks > 1 else "")
        + f", {p.threads} CPU thread(s) each"
        + (f", GPUs {p.gpus}" if p.gpus else "")
        + f"; logs in {p.folder}/"
    )
    warm_up = threading.Thread(target=_import_for_the_summary, args=(sw,), daemon=True)
    interrupted = _supervise(study, p, procs, console, baseline, warm_up)
    console.print()  # the live view leaves the cursor on its last line
    if warm_up.is_alive():
        warm_up.join()
    if not interrupted and not sw.test_every_trial:
        test_the_best(study, runs_root, console)
    show_study(study, console, baseline=baseline)
    if interrupted:
        console.print(
            f"[yellow]Interrupted.[/] Finished trials are kept; run `{resume_command(p)}` to resume."
        )
        raise KeyboardInterrupt
    log_study(study, sw, p.folder, console)
    _check_budget(study, p, procs, console)
    return study


def _supervise(
    study: Any, p: Plan, procs: list[WorkerProc], console: Console, baseline: bool, warm_up: threading.Thread
) -> bool:
    """Watch the workers until none is left to run; True when interrupted (Ctrl-C, SIGTERM, SIGHUP)."""
    from rich.live import Live

    # Ctrl-C, SIGTERM and SIGHUP set a flag that the loop below reads: a KeyboardInterrupt raised
    # wherever the signal lands can be swallowed (inside an import lock's callback while the warm-up
    # thread imports, for one), and the sweep would then run on as if never interrupted
    asked = threading.Event()
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, lambda *_: asked.set()) for s in stops}

    def check() -> None:
        if asked.is_set():
            raise KeyboardInterrupt

    try:
        if baseline:  # while the workers start (imports, data); on a cold cache one cleaning serves both
            study_baseline(study, p.sw, console)
        check()
        warm_up.start()
        noted = -1
        with Live(_view(study, p.sw, p.budget, procs), console=console, refresh_per_second=2) as live:
            while any([_keep_going(study, p, w, console) for w in procs]):
                check()
                live.update(_view(study, p.sw, p.budget, procs))
                if (done := finished(study)) != noted:  # the dashboard's note follows the study
                    save_note(study)
                    noted = done
                check()
                time.sleep(0.5)
            check()
            live.update(_view(study, p.sw, p.budget, procs))
        save_note(study)
    except KeyboardInterrupt:
        for w in procs:
            w.stop(signal.SIGINT, grace=60)
        return True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with contextlib.suppress(Exception):  # nothing of ours may stay RUNNING; never mask the real error
            fail_orphans(study, p.sw, {w.token for w in procs}, "its worker ended without finishing it")
    return False


def _keep_going(study: Any, p: Plan, w: WorkerProc, console: Console) -> bool:
    """Whether worker `w` still runs (or was just restarted). A worker that died has its trial failed
    at once and queued again, and is restarted unless the study is done or it crash-loops."""
    if w.given_up is not None:
        return False
    rc = w.poll()
    if rc is None:
        return True
    if rc in (0, 130):  # done (budget, target or deadline reached), or interrupted
        return False
    why = describe_exit(rc)
    fail_orphans(study, p.sw, {w.token}, f"worker {w.index} (pid {w.proc.pid}) {why}")
    done = finished(study)
    if p.budget is not None and done >= p.budget:
        return False
    if done > w.finished_at_last_death:
        w.deaths_in_a_row = 0  # the study made progress since this worker last died
    w.deaths_in_a_row += 1
    w.finished_at_last_death = done
    limit = p.sw.spec.faults.crash_loop
    if w.deaths_in_a_row >= limit:
        w.given_up = (
            f"worker {w.index} {why} {w.deaths_in_a_row} times in a row while no trial finished (see {w.log})"
        )
        console.print(f"[red]{w.given_up}: not restarted (faults.crash_loop {limit}).[/]")
        return False
    p.respawn(w)
    return True


def describe_exit(rc: int) -> str:
    """`was killed by SIGKILL`, `exited with status 2`, ..."""
    if rc == GROUP_RESTART:
        return "restarted its ranks after a failed trial"
    if rc < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-rc).name}"
    return f"exited with status {rc}"


def fail_orphans(study: Any, sw: Sweep, tokens: set[str], why: str) -> int:
    """Fail, and queue again (up to `faults.max_retries` times), the RUNNING trials of dead workers:
    those tagged with one of `tokens`, and those no worker has tagged yet. The second kind exists only
    while a worker holds the claim lock (it tags its trial before releasing it), so with the lock held
    here, an untagged RUNNING trial belongs to a worker that died holding it. Returns how many."""
    import optuna

    from experiments.sweep.claim import ClaimLock
    from experiments.sweep.objective import WORKER_TOKEN_ATTR, fail_trial

    claim = ClaimLock(_rdb_of(study), sw.name)
    claim.acquire()
    try:
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        orphans = [t for t in running if t.user_attrs.get(WORKER_TOKEN_ATTR, None) in tokens | {None}]
        for t in orphans:
            fail_trial(study, t.number, why, retry=sw.spec.faults.max_retries)
    finally:
        claim.release()
    return len(orphans)


def _rdb_of(study: Any) -> Any:
    from experiments.results import optuna_private

    return optuna_private.rdb_storage(optuna_private.study_storage(study))


def resume_command(p: Plan) -> str:
    """The command that picks the study up again (the storage from the same place as now)."""
    from experiments.results.run_record import RUNS_ENV

    cmd = f"ecomlab sweep {p.sw.source}"
    if os.environ.get(RUNS_ENV) != str(p.runs_root) and str(p.runs_root) != "runs":
        cmd += f" --runs-dir {p.runs_root}"
    if os.environ.get(STORAGE_ENV):
        cmd += " (with the same --storage / $ECOMLAB_STORAGE)"
    return cmd


def _check_budget(study: Any, p: Plan, procs: list[WorkerProc], console: Console) -> None:
    """Say so when the sweep ended short of its budget: a stop the file asked for (its timeout, its
    target) is said on the last line; a stop it did not ask for ends non-zero."""
    from experiments.sweep.claim import target_reached

    done = finished(study)
    if p.budget is None or done >= p.budget or target_reached(study, p.sw):
        return
    left = p.budget - done
    running = counts(study).get("RUNNING", 0)
    elsewhere = f", {running} running elsewhere" if running else ""
    if p.deadline is not None and time.time() >= p.deadline:
        console.print(
            f"budget.timeout ({p.sw.spec.budget.timeout:g} s) reached with {done} of {p.budget} trials "
            f"finished{elsewhere}: `{resume_command(p)}` runs the {left} left."
        )
        return
    why = "; ".join(w.given_up for w in procs if w.given_up) or "the workers stopped"
    raise SweepIncomplete(
        f"Stopped short of the budget: {done} of {p.budget} trials finished, {left} left"
        f"{elsewhere}: {why}. `{resume_command(p)}` resumes the study."
    )


def _import_for_the_summary(sw: Sweep) -> None:
    """Import, while the workers train, what the end of a sweep needs: the summary's baseline lines
    (torch), the parameter importances (scikit-learn) and the study-level W&B run (wandb, and the
    launch-input models that `wandb.init` builds), about 5 s that a user would otherwise wait for
    after the last trial. Only imports: nothing starts and nothing is written."""
    from experiments.results import tracking

    try:
        import optuna.importance  # noqa: F401 - the parameter importances
        import sklearn.ensemble  # noqa: F401 - the forests they are computed with

        from experiments.run import baseline  # noqa: F401 - torch

        if tracking.resolve_mode(sw.base_experiment.tracking) != "disabled":
            import wandb.sdk.launch.inputs.internal  # noqa: F401
    except Exception:  # noqa: BLE001 - the summary imports them again and reports any real error
        pass


def _view(study: Any, sw: Sweep, budget: int | None, procs: list[WorkerProc]) -> Any:
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    trials = study.get_trials(deepcopy=False)
    by_state = counts(study)
    done = finished(study)
    best = "-"
    if not sw.multi_objective:
        complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
        if complete:
            pick = max if sw.objectives[0].goal == "maximize" else min
            b = pick(complete, key=lambda t: t.value)
            best = f"{b.value:.4f} (trial {b.number})"
    else:
        best = f"Pareto front: {len(study.best_trials) if done else 0} trial(s)"
    head = Table.grid(padding=(0, 1))
    head.add_row(
        ProgressBar(total=budget or max(done, 1), completed=done, width=40),
        f"{done}/{budget or '∞'} finished",
        f"{by_state.get('PRUNED', 0)} pruned",
        f"{by_state.get('FAIL', 0)} failed",
        f"best {sw.objectives[0].name}: {best}",
    )
    table = Table(title=None, box=None)
    for col in ("worker", "pid", "state", "trial", "restarts"):
        table.add_column(col)
    running = {t.user_attrs.get("worker_token"): t for t in trials if t.state.name == "RUNNING"}
    for w in procs:
        rc = w.proc.poll()
        t = running.get(w.token)
        state = "running" if t else ("starting / waiting" if rc is None else f"exited ({rc})")
        if w.given_up:
            state = "given up (crash loop)"
        table.add_row(str(w.index), str(w.proc.pid), state, str(t.number) if t else "-", str(w.restarts))
    return Group(head, table)
