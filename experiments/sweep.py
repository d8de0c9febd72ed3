"""`ecomlab sweep`: an Optuna study from a sweep file, run by N worker processes sharing its storage.

Each trial is a normal `train(cfg)` run with its own run record and experiment id (kept on the trial as
the user attribute `experiment_id`) and its own W&B run (group = study name, job type = sweep).

Workers claim trials under a file lock, so together they start exactly the budgeted number of
finished (complete or pruned) trials; failed trials do not use up the budget. Storage heartbeats mark
the trial of a killed worker FAIL after the grace period, and Optuna's RetryHeartbeatStaleTrialCallback
queues it again; the monitor replaces a worker that died.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from experiments import run_record
from experiments.compare import fmt_value
from experiments.config import ExperimentConfig, experiment_id, validate
from experiments.core.errors import EcomlabError
from experiments.registry import TASKS
from experiments.sweep_config import Sweep, load_sweep

FINISHED = ("COMPLETE", "PRUNED")
RECORDED_METRICS = ("val/", "test/", "model/")  # the run's metrics kept on its Optuna trial


def sweep_dir(runs_root: Path, name: str) -> Path:
    return runs_root / "sweeps" / name


def storage_url(sw: Sweep, runs_root: Path) -> str:
    from experiments.study import default_storage_url

    return sw.storage or default_storage_url(runs_root)


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


def create_study(sw: Sweep, runs_root: Path, worker_index: int = 0) -> Any:
    import optuna

    from experiments import study as st

    url = storage_url(sw, runs_root)
    storage = st.storage(url, sw.faults.heartbeat_interval, sw.faults.grace_period, sw.faults.max_retries)
    base = trial_experiment(sw, {})
    # A fresh seed per worker and per resume, so workers and re-runs do not replay one random sequence.
    probe = optuna.create_study(study_name=sw.name, storage=storage, directions=sw.directions,
                                load_if_exists=True)  # fmt: skip
    n_existing = len(probe.get_trials(deepcopy=False))
    sw_seeded = dataclasses.replace(sw, sampler_seed=sw.sampler_seed + 1000 * n_existing + worker_index)
    study = optuna.load_study(study_name=sw.name, storage=storage, sampler=st.sampler(sw_seeded),
                              pruner=st.pruner(sw, base.trainer.max_epochs))  # fmt: skip
    if "metrics" not in study.user_attrs:
        study.set_user_attr("metrics", [m.model_dump(exclude_none=True) for m in sw.objectives])
        study.set_user_attr("sweep_file", str(sw.source))
        study.set_user_attr("base_experiment_id", experiment_id(base))
    return study


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


def make_objective(sw: Sweep, runs_root: Path, worker: int, console: Console, lock: Any) -> Any:
    from optuna_integration import PyTorchLightningPruningCallback

    from experiments import study as st
    from experiments.train import train

    # Optuna takes intermediate values only for one objective; with pruner none they still draw the
    # dashboard's learning curves (NopPruner never stops a trial)
    base = trial_experiment(sw, {})
    reports_epochs = not sw.multi_objective and sw.objectives[0].name in per_epoch_metrics(base.task)

    def objective(trial: Any) -> float | list[float]:
        lock.release()  # the trial exists now (RUNNING): other workers may claim the next one
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("pid", os.getpid())
        if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:  # the GPUs this worker owns
            trial.set_user_attr("devices", os.environ["CUDA_VISIBLE_DEVICES"])
        try:
            values = st.suggest(trial, sw)
            try:
                cfg = trial_experiment(sw, values)
            except EcomlabError as exc:
                raise ValueError(f"invalid parameter combination: {exc}") from None
            exp_id = experiment_id(cfg)
            trial.set_user_attr("experiment_id", exp_id)
            done = runs_root / exp_id / "metrics.json"
            if done.is_file():
                # The same configuration already ran (another trial, or an earlier sweep): reuse it.
                metrics = json.loads(done.read_text())
                trial.set_user_attr("reused_record", True)
            else:
                callbacks = []
                if reports_epochs:  # learning curves on the trial, so the pruner and dashboard see them
                    callbacks.append(PyTorchLightningPruningCallback(trial, monitor=sw.objectives[0].name))
                metrics = train(cfg, runs_root, console=console, extra_callbacks=callbacks,
                                extra_config={"study": sw.name, "trial": trial.number, **values})  # fmt: skip
            # one write, not one per metric: each attribute is a storage transaction
            trial.set_user_attr("metrics", {k: v for k, v in metrics.items()
                                            if k.startswith(RECORDED_METRICS) and v is not None})  # fmt: skip
            out = [_metric_value(metrics, m.name) for m in sw.objectives]
            return out if sw.multi_objective else out[0]
        except Exception as exc:
            import optuna

            if not isinstance(exc, optuna.TrialPruned):
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:1000])
            raise

    return objective


class _ClaimLock:
    """File lock held from "count the trials" until the new trial is RUNNING in storage; the objective
    releases it as its first step."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.file: Any = None

    def acquire(self) -> None:
        self.file = open(self.path, "a")
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.file is not None:
            f, self.file = self.file, None
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()


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
               n_trials: int | None = None, console: Console | None = None) -> int:  # fmt: skip
    """One worker: claim and run trials until the study has its finished trials or time is up."""
    import optuna

    console = console or Console()
    sw = load_sweep(sweep_file)
    budget = effective_budget(sw, n_trials)
    study = create_study(sw, runs_root, worker)
    lock = _ClaimLock(sweep_dir(runs_root, sw.name) / "claim.lock")
    objective = make_objective(sw, runs_root, worker, console, lock)
    ran = 0
    while True:
        if deadline is not None and time.time() >= deadline:
            break
        lock.acquire()
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAIL, and re-queued
        counts = _counts(study)
        finished = sum(counts.get(s, 0) for s in FINISHED)
        running = counts.get("RUNNING", 0)
        if budget is not None and finished >= budget:
            lock.release()
            break
        if target_reached(study, sw):  # W&B's metric.target: no new trial once one reached it
            lock.release()
            break
        if budget is not None and finished + running >= budget:
            lock.release()  # the rest is running elsewhere; wait in case one of them fails
            time.sleep(min(2.0, sw.faults.heartbeat_interval))
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,))
        finally:
            lock.release()  # if the trial could not even start
        ran += 1
    return ran


@dataclass
class WorkerProc:
    index: int
    proc: subprocess.Popen
    log: Path
    restarts: int = 0


def _spawn(sweep_file: Path, runs_root: Path, index: int, deadline: float | None, n_trials: int | None,
           threads: int, devices: list[str] | None, log: Path) -> subprocess.Popen:  # fmt: skip
    env = dict(os.environ)
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
    out = open(log, "ab")
    # Own session: a Ctrl-C in the terminal reaches only the monitor, which forwards exactly one
    # SIGINT, so a worker is never interrupted again while Optuna records its trial as failed.
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


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
              n_trials: int | None = None, console: Console | None = None) -> Any:  # fmt: skip
    """Start `workers` processes on the study and show a live view until they are done. `sweep_file`
    may be the already loaded Sweep (the CLI loads and checks it once)."""
    from rich.live import Live

    console = console or Console()
    sw = sweep_file if isinstance(sweep_file, Sweep) else load_sweep(sweep_file)
    sweep_file = sw.source
    study = create_study(sw, runs_root)
    budget = effective_budget(sw, n_trials)
    deadline = time.time() + sw.budget.timeout if sw.budget.timeout else None
    gpus = plan_devices(workers, devices_per_trial, sw)
    threads = max(1, (os.cpu_count() or 1) // workers)
    folder = sweep_dir(runs_root, sw.name)
    procs = [WorkerProc(i, _spawn(sweep_file, runs_root, i, deadline, n_trials, threads,
                                  gpus[i] if gpus else None, folder / f"worker-{i}.log"), folder / f"worker-{i}.log")
             for i in range(workers)]  # fmt: skip
    console.print(f"Study [bold]{sw.name}[/] ({storage_url(sw, runs_root).split('://')[0]}), "
                  f"{workers} worker(s), {threads} CPU thread(s) each"
                  + (f", GPUs {gpus}" if gpus else "") + f"; logs in {folder}/")  # fmt: skip
    interrupted = False
    try:
        with Live(
            _view(study, sw, budget, procs), console=console, refresh_per_second=2, transient=False
        ) as live:
            while True:
                alive = False
                for w in procs:
                    rc = w.proc.poll()
                    if rc is None:
                        alive = True
                    elif rc not in (0, 130) and w.restarts < sw.faults.max_retries + 1:
                        finished = sum(_counts(study).get(s, 0) for s in FINISHED)
                        if budget is None or finished < budget:
                            # a killed or crashed worker: its trial is retried through the heartbeat
                            w.restarts += 1
                            w.proc = _spawn(sweep_file, runs_root, w.index, deadline, n_trials, threads,
                                            gpus[w.index] if gpus else None, w.log)  # fmt: skip
                            alive = True
                live.update(_view(study, sw, budget, procs))
                if not alive:
                    break
                time.sleep(1.0)
    except KeyboardInterrupt:
        interrupted = True
        for w in procs:
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(2)
        for w in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.proc.wait(timeout=60)
    console.print()  # the live view leaves the cursor on its last line
    show_study(study, console)
    if not interrupted:
        _log_study(study, sw, folder, console)
    if interrupted:
        console.print(
            f"[yellow]Interrupted.[/] Finished trials are kept; run `ecomlab sweep {sweep_file}` to resume."
        )
        raise KeyboardInterrupt
    return study


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


def show_study(study: Any, console: Console) -> None:
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
    else:
        front = []
        for t in study.best_trials:
            vals = ", ".join(f"{m['name']}={v:.4g}" for m, v in zip(metrics, t.values))
            front.append(f"trial {t.number} ({vals}, experiment {t.user_attrs.get('experiment_id')})")
        console.print("Pareto front: " + "; ".join(front))
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
