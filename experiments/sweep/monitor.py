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
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments.core.errors import EcomlabError
from experiments.sweep.claim import FINISHED, counts, effective_budget
from experiments.sweep.file import DEVICE_KEYS, Sweep, load_sweep
from experiments.sweep.study import open_study, storage_url, study_baseline, sweep_dir
from experiments.sweep.summary import log_study, show_study
from experiments.sweep.worker import GROUP_RESTART


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


def _spawn(
    sweep_file: Path,
    runs_root: Path,
    index: int,
    deadline: float | None,
    n_trials: int | None,
    threads: int,
    devices: list[str] | None,
    log: Path,
    ranks: int = 1,
) -> list[subprocess.Popen]:
    """Start a worker: one process, or K rank processes with torchrun's environment (so Lightning's
    DDP uses them as they are) and a fresh rendezvous port on 127.0.0.1."""
    env = dict(os.environ)
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
    ]
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
    if searched := [p.path for p in sw.searched if p.path in DEVICE_KEYS]:
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


def run_sweep(
    sweep_file: Path | Sweep,
    runs_root: Path,
    workers: int = 1,
    devices_per_trial: int | None = None,
    n_trials: int | None = None,
    console: Console | None = None,
    baseline: bool = True,
) -> Any:
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
    study = open_study(sw, runs_root, sampling=False)[0]
    budget = effective_budget(sw, n_trials)
    deadline = time.time() + sw.spec.budget.timeout if sw.spec.budget.timeout else None
    gpus = plan_devices(workers, devices_per_trial, sw)
    threads = max(1, (os.cpu_count() or 1) // (workers * k))
    folder = sweep_dir(runs_root, sw.name)

    def spawn(i: int) -> list[subprocess.Popen]:
        return _spawn(
            sweep_file,
            runs_root,
            i,
            deadline,
            n_trials,
            threads,
            gpus[i] if gpus else None,
            folder / f"worker-{i}.log",
            ranks=k,
        )

    procs = [WorkerProc(i, spawn(i), folder / f"worker-{i}.log") for i in range(workers)]
    console.print(
        f"Study [bold]{sw.name}[/] ({storage_url(sw, runs_root).split('://')[0]}), "
        f"{workers} worker(s)"
        + (f" of {k} ranks (DDP)" if k > 1 else "")
        + f", {threads} CPU thread(s) each"
        + (f", GPUs {gpus}" if gpus else "")
        + f"; logs in {folder}/"
    )
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
                        and (rc == GROUP_RESTART or w.restarts < sw.spec.faults.max_retries + 1)
                    ):
                        finished = sum(counts(study).get(s, 0) for s in FINISHED)
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
        log_study(study, sw, folder, console)
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
    from experiments.results import tracking

    try:
        import optuna.importance  # noqa: F401 - the parameter importances
        import sklearn.ensemble  # noqa: F401 - the forests they are computed with

        from experiments.run import baseline  # noqa: F401 - torch

        if tracking.resolve_mode(sw.base_experiment.tracking) != "disabled":
            import wandb.sdk.launch.inputs.internal  # noqa: F401
    except Exception:  # noqa: BLE001 - the summary imports them again and reports any real error
        pass


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _view(study: Any, sw: Sweep, budget: int | None, procs: list[WorkerProc]) -> Any:
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    trials = study.get_trials(deepcopy=False)
    by_state = counts(study)
    finished = sum(by_state.get(s, 0) for s in FINISHED)
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
    head.add_row(
        ProgressBar(total=budget or max(finished, 1), completed=finished, width=40),
        f"{finished}/{budget or '∞'} finished",
        f"{by_state.get('PRUNED', 0)} pruned",
        f"{by_state.get('FAIL', 0)} failed",
        f"best {sw.objectives[0].name}: {best}",
    )
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
