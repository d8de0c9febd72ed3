"""One sweep worker process (started by `ecomlab sweep`): `python -m experiments.sweep_worker FILE ...`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="experiments.sweep_worker")
    ap.add_argument("sweep_file", type=Path)
    ap.add_argument("--runs-dir", type=Path, required=True)
    ap.add_argument("--worker", type=int, default=0)
    ap.add_argument("--deadline", type=float, default=None)
    ap.add_argument("--n-trials", type=int, default=None)
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
    from experiments.sweep import run_worker

    try:
        n = run_worker(args.sweep_file, args.runs_dir, args.worker, args.deadline, args.n_trials,
                       console=Console(width=120), watch_parent=True)  # fmt: skip
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
