"""Read the records of an offline W&B run file (`run-*.wandb`), to check what W&B would upload.

The file is W&B's 7-byte header followed by a LevelDB-style log: 32 KiB blocks of chunks, each
`crc32 (4) | length (2, little endian) | type (1: full, 2: first, 3: middle, 4: last) | payload`.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path) -> list[Any]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    out, pos, parts = [], HEADER, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left  # block trailer padding
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        if pos + 7 + length > len(data):
            break  # a chunk still being written
        payload = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            parts = payload
        elif kind == 2:
            parts = payload
            continue
        elif kind == 3:
            parts += payload
            continue
        elif kind == 4:
            parts += payload
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(parts)
        out.append(rec)
    return out


def finished_records(path: Path, timeout: float = 60.0) -> list[Any]:
    """The records of a finished run. W&B's service may still be flushing the file when `finish()`
    has returned (seen once in CI: a file with no run record yet), so wait for the exit record."""
    deadline = time.monotonic() + timeout
    while True:
        recs = records(path)
        kinds = [rec.WhichOneof("record_type") for rec in recs]
        if "exit" in kinds and "run" in kinds:
            return recs
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: no finished run after {timeout:.0f} s; record kinds {kinds}")
        time.sleep(0.2)


def summary(path: Path) -> dict[str, Any]:
    """Run info, config, the last value of every history key, and the final summary."""
    info: dict[str, Any] = {"history": {}, "summary": {}, "config": {}}
    for rec in finished_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            info.update(
                name=rec.run.display_name,
                group=rec.run.run_group,
                job_type=rec.run.job_type,
                tags=list(rec.run.tags),
                project=rec.run.project,
            )
            for item in rec.run.config.update:
                info["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                info["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            for item in rec.history.item:
                info["history"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in rec.summary.update:
                info["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return info
