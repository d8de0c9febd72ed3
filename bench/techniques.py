"""The fine-tuning strategies of issue 16, each against the same run without it, in one run.

    python bench/techniques.py [--seeds 3] [--only NAME ...] [--runs DIR]

For each row: the base config with the strategy off and on, the same split, `--seeds` seeds each;
prints the mean ± std of test macro-F1 of both sides and the difference, whatever it is.

- adversarial training (FGM) and augmentation (EDA / character edits) with the `tiny` BERT on 3,000
  women's clothing reviews (recommended or not) and 3,000 Dangdang reviews (Chinese);
- layer-wise lr decay and label smoothing with the bundled MiniLM-L6 on 1,600 women's clothing
  reviews (the main job's split, 2 epochs);
- 5-fold cross-validation (`eval.folds: 5`) with the `tiny` BERT on the 643 electronics listings
  (18 categories): the test F1 of the chosen fold's model against the single split's, and the spread
  of the fold estimates, which a single split does not show.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

TINY = {"backbone": "tiny", "tiny": {"layers": 2, "hidden": 128, "heads": 2, "vocab_size": 8000}}
WOMENS_TINY = {
    "data": {
        "dataset": "womens_clothing_reviews",
        "target": "recommended",
        "subsample": 3000,
        "max_length": 64,
        "batch_size": 32,
    },
    "model": TINY,
    "optim": {"lr": 1e-3, "warmup": 0.1},
    "trainer": {"max_epochs": 4, "patience": 2},
}
DANGDANG_TINY = {
    "data": {"dataset": "dangdang_reviews", "subsample": 3000, "max_length": 96, "batch_size": 32},
    "model": TINY,
    "optim": {"lr": 1e-3, "warmup": 0.1},
    "trainer": {"max_epochs": 4, "patience": 2},
}
WOMENS_MINILM = {
    "data": {
        "dataset": "womens_clothing_reviews",
        "target": "recommended",
        "subsample": 1600,
        "max_length": 48,
        "batch_size": 32,
    },
    "model": {"backbone": "minilm"},
    "optim": {"lr": 1.2e-4, "warmup": 0.1},
    "trainer": {"max_epochs": 2, "patience": 2},
}
ELECTRONICS_TINY = {
    "data": {
        "dataset": "electronics_products",
        "text_fields": ["Title", "Feature"],
        "max_length": 96,
        "batch_size": 16,
    },
    "model": TINY,
    "optim": {"lr": 2e-3, "warmup": 0.1},
    "trainer": {"max_epochs": 8, "patience": 3},
}

# name -> (base config, what the strategy sets)
ROWS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "fgm-womens": (WOMENS_TINY, {"adversarial": {"method": "fgm", "epsilon": 0.01}}),
    "fgm-dangdang": (DANGDANG_TINY, {"adversarial": {"method": "fgm", "epsilon": 0.01}}),
    "eda-womens": (WOMENS_TINY, {"augment": {"method": "eda", "p": 0.1, "copies": 1}}),
    "char-dangdang": (DANGDANG_TINY, {"augment": {"method": "char", "p": 0.1, "copies": 1}}),
    "llrd-minilm": (WOMENS_MINILM, {"optim": {"layer_decay": 0.8}}),
    "smoothing-minilm": (WOMENS_MINILM, {"optim": {"label_smoothing": 0.1}}),
    "cv-electronics": (ELECTRONICS_TINY, {"eval": {"folds": 5}}),
}


def merged(base: dict[str, Any], extra: dict[str, Any], seed: int) -> dict[str, Any]:
    cfg = copy.deepcopy(base)
    for group, values in extra.items():
        cfg.setdefault(group, {}).update(values)
    return {**cfg, "seed": seed, "tracking": {"mode": "disabled"}}


def side(
    folder: Path, name: str, base: dict[str, Any], extra: dict[str, Any], seeds: int
) -> list[dict[str, Any]]:
    return [
        sweep_common.run_config(folder, f"{name}-{seed}", merged(base, extra, seed))[1]
        for seed in range(seeds)
    ]


def mean_std(values: list[float]) -> str:
    sd = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=sorted(ROWS), help="rows to run (default: all)")
    ap.add_argument(
        "--runs", type=Path, default=None, help="folder to keep the runs in (default: a temporary one)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.runs or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.only or ROWS:
            base, extra = ROWS[name]
            off = side(folder, f"{name}-off", base, {}, args.seeds)  # a shared base is trained once
            on = side(folder, f"{name}-on", base, extra, args.seeds)
            f_off, f_on = [m["test/f1"] for m in off], [m["test/f1"] for m in on]
            diff = statistics.fmean(f_on) - statistics.fmean(f_off)
            s_off = sum(m["time/total_s"] for m in off) / len(off)
            s_on = sum(m["time/total_s"] for m in on) / len(on)
            line = (
                f"{name}: test macro-F1 off {mean_std(f_off)} | on {mean_std(f_on)} | {diff:+.4f} | "
                f"seconds per run {s_off:.0f} / {s_on:.0f}"
            )
            if "cv/folds" in on[0]:
                spread = statistics.fmean(m["val/f1_std"] for m in on)
                line += f" | CV val/f1 {mean_std([m['val/f1'] for m in on])}, fold spread (std) {spread:.4f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
