"""Fingerprints: sha256 of JSON-able parts, of source files' bytes, of a tokenizer's definition.

They key the token cache, the `tiny` backbone's vocabulary folder and a run record's data facts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from experiments.core.assets import sha256_file

# Data options that change how a split is batched or tokenised, never which examples it holds: a
# teacher's split, a baseline's cache key and `compare`'s grouping by split ignore them.
NOT_SPLIT_SHAPING = frozenset({"max_length", "batch_size", "eval_batch_size", "num_workers"})


def fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def files_fingerprint(paths: list[Path]) -> str:
    """sha256 over the bytes of the source files (names excluded, order kept)."""
    return fingerprint([sha256_file(p) for p in paths])


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of the tokenizer's full definition (vocab, normaliser, specials), not of its path."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        body = backend.to_str()
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    return fingerprint(
        type(tokenizer).__name__,
        body,
        tokenizer.all_special_tokens,
        getattr(tokenizer, "padding_side", "right"),
    )
