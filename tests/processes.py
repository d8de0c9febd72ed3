"""Processes as the tests see them, read from /proc: `pgrep -f` would also match another `pgrep`
whose pattern names the same folder (a test's killer thread polls with one), and a zombie (dead,
waiting for its parent or init to reap it) is not alive."""

from __future__ import annotations

from pathlib import Path

WORKER_MODULE = "experiments.sweep.worker"


def alive(pid: int) -> bool:
    """Whether the process runs: it exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:  # gone (or ended while we looked)
        return False
    return stat.rsplit(b")", 1)[1].split()[0] != b"Z"  # the state follows the name, which may hold spaces


def worker_pids(under: Path) -> list[int]:
    """The pids of live `python -m experiments.sweep.worker SWEEP_FILE ...` processes whose sweep file
    lies under (or is) `under`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")]
        except OSError:  # it ended while we looked
            continue
        if WORKER_MODULE not in args[:-1]:
            continue
        sweep_file = args[args.index(WORKER_MODULE) + 1]
        if (sweep_file == str(under) or sweep_file.startswith(f"{under}/")) and alive(int(proc.name)):
            pids.append(int(proc.name))
    return pids
