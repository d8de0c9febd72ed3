"""On-disk cache of tokenised splits, keyed by a fingerprint of everything that shapes them.

The key covers the data bytes, the cleaning/split options, the tokenizer and max_length, so a second
run (and every sweep trial) skips reading, cleaning and tokenising, while a changed tokenizer or
max_length misses. Tensors are stored with safetensors (no pickle); writes go to a temporary folder
that is renamed into place, so concurrent trials never see half a cache entry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from experiments.core.assets import cache_root

CACHE_VERSION = 1


def cache_dir() -> Path:
    return cache_root() / "tokens"


@dataclass
class CachedSplits:
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def load(key: str) -> CachedSplits | None:
    d = cache_dir() / key
    if not (d / "meta.json").is_file() or not (d / "tokens.safetensors").is_file():
        return None
    try:
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("cache_version") != CACHE_VERSION:
            return None
        return CachedSplits(tensors=load_file(d / "tokens.safetensors"), meta=meta)
    except (OSError, ValueError, json.JSONDecodeError):
        return None  # a damaged entry is rebuilt


@contextlib.contextmanager
def building(key: str) -> Iterator[None]:
    """Hold the machine-wide lock for building entry `key` (an OS file lock beside the cache): a
    second process that wants the same entry waits here, then finds it built. Released when the
    holder exits, also if it is killed."""
    import fcntl

    locks = cache_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{key}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def save(key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    final = cache_dir() / key
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key[:16]}.tmp-"))
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp / "tokens.safetensors")
        (tmp / "meta.json").write_text(json.dumps({**meta, "cache_version": CACHE_VERSION}, indent=1))
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
