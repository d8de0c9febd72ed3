"""The sweep workers alive on this machine, read from /proc: `pgrep -f` would also match another
`pgrep` whose pattern names the same folder (a test's killer thread polls with one), and a zombie
(dead, waiting for init to reap it) is not alive."""

from __future__ import annotations

from pathlib import Path

WORKER_MODULE = "experiments.sweep.worker"


def worker_pids(under: Path) -> list[int]:
    """The pids of `python -m experiments.sweep.worker SWEEP_FILE ...` processes whose sweep file
    lies under (or is) `under`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]  # after the name
        except OSError:  # it ended while we looked
            continue
        args = [a.decode(errors="replace") for a in argv]
        if state == b"Z" or WORKER_MODULE not in args[:-1]:
            continue
        sweep_file = args[args.index(WORKER_MODULE) + 1]
        if sweep_file == str(under) or sweep_file.startswith(f"{under}/"):
            pids.append(int(proc.name))
    return pids
