"""(d) Distributed sweeps on this machine, each side through `ecomlab sweep` as a user runs it.

    python bench/sweep_distributed.py devices  [--trials N]   # K=2 CPU devices a trial vs 1
    python bench/sweep_distributed.py machines [--trials N] [--storage URL]   # two "machines" vs one

devices: the same sweep (the small real-data text sweep of bench/sweep_common.py: tiny BERT 2x64,
2,000 women's clothing reviews, 4 epochs; random sampler, no pruning, so every trial does the same
work) with `trainer.devices: 1` (one worker, both threads) and with `trainer.devices: 2` (one worker
of two gloo ranks, one thread each: DDP, the global batch doubles). On 2 cores expect at most 1x; the
point is the measured cost of DDP on CPU.

machines: one `ecomlab sweep` process vs two started together in separate working directories with
separate runs folders, sharing one storage (default: one SQLite file; `--storage` for PostgreSQL),
one thread a trial on both sides. Prints trials/hour and the storage's share of trial time: for
each complete trial, Optuna's trial duration minus the run's own `time/total_s`, i.e. claim, ask,
parameter sampling, user attributes, heartbeats and tell, over the trial duration.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

ECOMLAB = str(Path(sys.executable).parent / "ecomlab")
FIXED_WORK = {"sampler": {"type": "random", "seed": 0}, "pruner": {"type": "none"}}


def base(**trainer: Any) -> dict[str, Any]:
    b = json.loads(json.dumps(sweep_common.BASE))
    b["trainer"].update(trainer)
    return b


def sweep(folder: Path, name: str, trials: int, url: str | None = None, **trainer: Any) -> float:
    """Run one `ecomlab sweep` in `folder`; its wall seconds."""
    path = sweep_common.write(folder, name, base=base(**trainer), budget={"n_trials": trials}, **FIXED_WORK)
    env = {**os.environ, "ECOMLAB_RUNS": str(folder / "runs")}
    if url:
        env["ECOMLAB_STORAGE"] = url
    start = time.perf_counter()
    subprocess.run([ECOMLAB, "sweep", str(path)], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def study(name: str, url: str) -> Any:
    from experiments.results.storage import load_study

    return load_study(name, url)


def storage_share(st: Any, roots: list[Path]) -> tuple[float, float]:
    """(median seconds outside train() a trial, that time's share of all trial time)."""
    outside, total = [], 0.0
    for t in st.get_trials():
        if t.state.name != "COMPLETE":
            continue
        duration = (t.datetime_complete - t.datetime_start).total_seconds()
        for root in roots:
            m = root / t.user_attrs["experiment_id"] / "metrics.json"
            if m.is_file():
                outside.append(duration - json.loads(m.read_text())["time/total_s"])
                total += duration
                break
    return statistics.median(outside), sum(outside) / total


def warm(tmp: Path) -> None:
    """Download and tokenise once, so neither side pays it."""
    sweep(tmp / "warm", "warm", 1)


def devices(trials: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        warm(tmp)
        one = sweep(tmp / "one", "one", trials, devices=1, accelerator="cpu")
        two = sweep(tmp / "two", "two", trials, devices=2, accelerator="cpu")
        fit = {}
        for side in ("one", "two"):
            url = f"sqlite:///{tmp / side / 'runs' / 'optuna.db'}"
            fit[side] = statistics.median(
                json.loads(
                    (tmp / side / "runs" / t.user_attrs["experiment_id"] / "metrics.json").read_text()
                )["time/fit_s"]
                for t in study(side, url).get_trials()
                if t.state.name == "COMPLETE"
            )
    print(
        f"{trials} trials, 1 device (2 threads): {one:.1f} s, {3600 * trials / one:.1f} trials/hour, "
        f"median fit {fit['one']:.2f} s"
    )
    print(
        f"{trials} trials, 2 CPU devices (DDP, gloo, 1 thread each): {two:.1f} s, "
        f"{3600 * trials / two:.1f} trials/hour, median fit {fit['two']:.2f} s"
    )
    print(f"ratio (2 devices / 1): {one / two:.2f}x trials/hour; fit {fit['one'] / fit['two']:.2f}x")


def machines(trials: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        warm(tmp)
        one_url = url or f"sqlite:///{tmp / 'one.db'}"
        one = sweep(tmp / "one", "one", trials, one_url, threads=1)
        med1, share1 = storage_share(study("one", one_url), [tmp / "one" / "runs"])
        two_url = url or f"sqlite:///{tmp / 'two.db'}"
        folders = [tmp / "m1", tmp / "m2"]
        for f in folders:
            f.mkdir()
        paths = [
            sweep_common.write(f, "two", base=base(threads=1), budget={"n_trials": trials}, **FIXED_WORK)
            for f in folders
        ]
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [ECOMLAB, "sweep", str(p)],
                cwd=f,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "ECOMLAB_RUNS": str(f / "runs"), "ECOMLAB_STORAGE": two_url},
            )
            for p, f in zip(paths, folders)
        ]
        for p in procs:
            assert p.wait() == 0
        two = time.perf_counter() - start
        st = study("two", two_url)
        n = len([t for t in st.get_trials() if t.state.name == "COMPLETE"])
        med2, share2 = storage_share(st, [f / "runs" for f in folders])
    kind = (url or "sqlite").split(":")[0]
    print(
        f"storage {kind}; {trials} trials, one machine: {one:.1f} s, {3600 * trials / one:.1f} trials/hour; "
        f"outside train() {med1 * 1000:.0f} ms a trial ({share1:.2%})"
    )
    print(
        f"{n} trials, two machines: {two:.1f} s, {3600 * n / two:.1f} trials/hour; "
        f"outside train() {med2 * 1000:.0f} ms a trial ({share2:.2%})"
    )
    print(f"ratio (two / one): {one / two * n / trials:.2f}x trials/hour")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["devices", "machines"])
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--storage", default=None, help="machines: a PostgreSQL/MySQL URL instead of SQLite")
    args = ap.parse_args()
    if args.what == "devices":
        devices(args.trials)
    else:
        machines(args.trials, args.storage)


if __name__ == "__main__":
    main()
