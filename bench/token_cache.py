"""(b) Data preparation, first run (read, clean, split, tokenise) vs second run (token cache hit).

    python bench/token_cache.py [--repeats 3]

Both sides time `DataModule.setup()` on all 23,486 women's clothing reviews with the MiniLM tokenizer
(max_length 128), assets already fetched. The first-run side deletes the cache entry before each
repeat. Prints both medians and the ratio (target >= 50x).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import time

import torch
from rich.console import Console

from experiments.config import validate
from experiments.config.registry import build_datamodule
from experiments.core import token_cache


def setup_time(cfg, drop_cache: bool) -> tuple[float, bool]:
    dm = build_datamodule(cfg, console=Console(quiet=True))
    if drop_cache:
        probe = build_datamodule(cfg, console=Console(quiet=True))
        probe.setup()
        shutil.rmtree(token_cache.cache_dir() / probe.cache_key)
    start = time.perf_counter()
    dm.setup()
    return time.perf_counter() - start, bool(dm.cache_hit)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = validate(
        {"data": {"dataset": "womens_clothing_reviews", "max_length": 128}, "model": {"backbone": "minilm"}}
    )
    setup_time(cfg, drop_cache=False)  # fetch assets, load the tokenizer once
    first, second = [], []
    for _ in range(args.repeats):
        t, hit = setup_time(cfg, drop_cache=True)
        assert not hit
        first.append(t)
        t, hit = setup_time(cfg, drop_cache=False)
        assert hit
        second.append(t)
    f, s = statistics.median(first), statistics.median(second)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads")
    print("DataModule.setup(), women's clothing reviews (23,486 rows), MiniLM tokenizer, max_length 128")
    print(f"first run (no cache):   median {f:.3f} s  {[round(x, 3) for x in first]}")
    print(f"second run (cache hit): median {s:.3f} s  {[round(x, 3) for x in second]}")
    print(f"speed-up: {f / s:.1f}x  (target >= 50x)")


if __name__ == "__main__":
    main()
