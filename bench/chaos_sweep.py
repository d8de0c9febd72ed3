"""Issue 26's figure: two "machines" (two `ecomlab sweep` monitors in separate folders) on one study
while a killer SIGKILLs a random worker every few seconds, against the same two machines left alone.

    python bench/chaos_sweep.py [--kills 20] [--trials 16] [--storage URL]

Each side: a fresh SQLite file (or `--storage`, e.g. a PostgreSQL database), the `tiny` text sweep of
tests/conftest.py's fixture (random search over lr, 3 epochs a trial), two monitors with one worker
each. The chaos side kills `--kills` workers at random moments (2-6 s apart, after a trial finished
somewhere since the last kill, so the study keeps progressing). Prints, per side: wall seconds, the
monitors' exit codes, finished trials against the budget (trials lost), trials left RUNNING, worker
processes left over (orphans), failed trials and their retries; and the wall-time ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import tiny_config  # noqa: E402

ECOMLAB = str(Path(sys.executable).parent / "ecomlab")


def write_sweep(where: Path, trials: int) -> Path:
    spec = {
        "name": "chaos",
        "base": tiny_config(data={"batch_size": 8}, trainer={"max_epochs": 3, "threads": 1}),
        "metric": {"name": "val/f1", "goal": "maximize"},
        "budget": {"n_trials": trials},
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "faults": {"heartbeat_interval": 2, "grace_period": 6, "max_retries": 3},
        "parameters": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    }
    path = where / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def workers(root: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"experiments.sweep.worker {root}"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def side(root: Path, url: str, trials: int, kills: int) -> dict:
    import optuna

    from experiments.results.storage import load_study

    procs = []
    for name in ("a", "b"):
        m = root / name
        m.mkdir(parents=True)
        env = {
            **os.environ,
            "ECOMLAB_RUNS": str(m / "runs"),
            "ECOMLAB_CACHE": os.environ.get("ECOMLAB_CACHE", str(root / "cache")),
        }
        procs.append(
            subprocess.Popen(
                [ECOMLAB, "sweep", str(write_sweep(m, trials)), "--storage", url],
                cwd=m,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    rng, done_kills, last, start = random.Random(0), 0, 0, time.time()
    next_kill = start + rng.uniform(4, 8)
    while any(p.poll() is None for p in procs):
        time.sleep(0.3)
        if done_kills >= kills or time.time() < next_kill:
            continue
        try:
            study = load_study("chaos", url)
        except Exception:  # noqa: BLE001 - not created yet
            continue
        finished = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
        pids = workers(root)
        if finished > last and pids:
            os.kill(rng.choice(pids), signal.SIGKILL)
            done_kills, last, next_kill = done_kills + 1, finished, time.time() + rng.uniform(2, 6)
    wall = time.time() - start
    trials_now = load_study("chaos", url).get_trials(deepcopy=False)
    states = [t.state for t in trials_now]
    return {
        "wall_s": wall,
        "exit_codes": [p.returncode for p in procs],
        "kills": done_kills,
        "finished": sum(s == optuna.trial.TrialState.COMPLETE for s in states),
        "running": sum(s == optuna.trial.TrialState.RUNNING for s in states),
        "failed": sum(s == optuna.trial.TrialState.FAIL for s in states),
        "retries": sum(1 for t in trials_now if t.system_attrs.get("failed_trial") is not None),
        "orphans": len(workers(root)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument(
        "--storage", default=None, help="a database URL for both sides (each gets a fresh study name)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("ECOMLAB_CACHE", str(Path(tmp) / "cache"))
        results = {}
        for name, kills in (("calm", 0), ("chaos", args.kills)):
            root = Path(tmp) / name
            url = args.storage or f"sqlite:///{root / 'shared.db'}"
            if args.storage:
                import optuna

                from experiments.results.storage import storage

                if "chaos" in [
                    s.study_name
                    for s in optuna.get_all_study_summaries(storage(url), include_best_trial=False)
                ]:
                    optuna.delete_study(study_name="chaos", storage=storage(url))
            root.mkdir()
            results[name] = r = side(root, url, args.trials, kills)
            lost = args.trials - r["finished"]
            print(
                f"{name}: {r['wall_s']:.1f} s, exit codes {r['exit_codes']}, SIGKILLs {r['kills']}, "
                f"finished {r['finished']}/{args.trials} (lost {lost}), RUNNING left {r['running']}, "
                f"orphans {r['orphans']}, failed {r['failed']} (retries {r['retries']})",
                flush=True,
            )
    print(f"chaos / calm wall time: {results['chaos']['wall_s'] / results['calm']['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
