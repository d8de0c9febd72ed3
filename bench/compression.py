"""(a) of the export/serve issue: what compression buys on a real model, all measured in one run.

    python bench/compression.py [--subsample 3000] [--epochs 2] [--lora-r 0] [--lr 5e-5]

Fine-tunes the bundled MiniLM-L6 (fully, or with LoRA: `--lora-r`) on women's clothing reviews (recommended or not,
max_length 64), once dense and once with half of every layer's FFN neurons pruned before
fine-tuning (`prune.ffn: 0.5`), exports both with `--int8 --onnx`, and prints test macro-F1,
latency at batch 1 and 32 (median of 10 passes, sequences at max_length, this machine's threads)
and weight size for: the trained fp32 model as trained (LoRA adapters unmerged; the run's own
`model/latency_ms`), as exported (LoRA merged), torch dynamic int8, ONNX, ONNX int8; then the speed-up of each
over the fp32 model as trained at batch 32 and its F1 change.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

ECOMLAB = str(Path(sys.executable).parent / "ecomlab")


def run_and_export(folder: Path, name: str, cfg: dict) -> tuple[dict, dict]:
    exp_id, metrics = sweep_common.run_config(folder, name, cfg)
    env = {**os.environ, "ECOMLAB_RUNS": str(folder / "runs")}
    subprocess.run(
        [ECOMLAB, "export", exp_id, "--out", str(folder / name), "--int8", "--onnx"],
        env=env,
        check=True,
        capture_output=True,
    )
    return metrics, json.loads((folder / name / "ecomlab.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subsample", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lora-r", type=int, default=0, help="LoRA rank (0: full fine-tuning)")
    ap.add_argument("--lr", type=float, default=5e-5)
    args = ap.parse_args()
    base = {
        "seed": 0,
        "data": {
            "dataset": "womens_clothing_reviews",
            "target": "recommended",
            "subsample": args.subsample,
            "max_length": 64,
            "batch_size": 32,
        },
        "model": {"backbone": "minilm"},
        "peft": {"r": args.lora_r, "alpha": 16},
        "optim": {"lr": args.lr, "warmup": 0.1},
        "trainer": {"max_epochs": args.epochs, "patience": args.epochs},
        "tracking": {"mode": "disabled"},
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("dense", {}), ("ffn-pruned-50%", {"prune": {"ffn": 0.5}})):
            metrics, info = run_and_export(Path(tmp), name, {**base, **extra})
            if name == "dense":
                trained = "fp32, LoRA unmerged" if args.lora_r else "fp32, as trained"
                rows.append(
                    (
                        f"{name}, {trained}",
                        metrics["test/f1"],
                        metrics["model/latency_ms"],
                        metrics["model/latency_ms_b32"],
                        metrics.get("model/size_mb"),
                    )
                )
            for rt, r in info["runtimes"].items():
                label = {
                    "torch": "fp32, LoRA merged" if args.lora_r else "fp32, exported",
                    "int8": "torch dynamic int8",
                    "onnx": "ONNX fp32",
                    "onnx-int8": "ONNX int8",
                }[rt]
                rows.append(
                    (
                        f"{name}, {label}",
                        r["quality"]["test/f1"],
                        r["latency_ms"]["batch1"],
                        r["latency_ms"]["batch32"],
                        r["size_mb"],
                    )
                )
    how = f"LoRA r{args.lora_r}" if args.lora_r else "full fine-tuning"
    print(
        f"MiniLM-L6, {how}, lr {args.lr:g}, women's clothing (recommended), {args.subsample} reviews, max_length 64, "
        f"{args.epochs} epochs, {os.cpu_count()} CPUs"
    )
    ref = rows[0]
    print(f"{'variant':45} {'test F1':>8} {'ms b1':>8} {'ms b32':>8} {'MB':>7} {'x b32':>6} {'dF1':>7}")
    for name, f1, b1, b32, mb in rows:
        mb_s = f"{mb:7.1f}" if mb else "      -"
        print(
            f"{name:45} {f1:8.4f} {b1:8.2f} {b32:8.2f} {mb_s} {ref[3] / b32:6.2f} {100 * (f1 - ref[1]):+7.2f}"
        )


if __name__ == "__main__":
    main()
