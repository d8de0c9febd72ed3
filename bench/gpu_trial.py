"""One fine-tuning trial on the GPU in bf16-mixed: training samples/s, peak GPU memory against the
run's own estimate, and model FLOP utilisation.

    python bench/gpu_trial.py [--backbone minilm] [--lora-r 0] [--quantize none|nf4|int8]
                              [--reviews 8000] [--batch-size 64] [--precision bf16-mixed]

The trial is a normal `train(cfg)` run (women's clothing reviews, recommended, max_length 128, 1
epoch, accelerator gpu), MiniLM by default; `--backbone smollm2-135m --lora-r 16 --quantize nf4` is the
QLoRA trial (LoRA adapters on nf4 base weights through bitsandbytes), and `--backbone gemma3-270m` needs
its terms accepted first (`ecomlab backbones --accept gemma3-270m`). A callback times the training
epoch alone (after a warm-up of 10 batches). FLOPs: 6 x parameters x tokens per training sample for
full fine-tuning, and 4 x parameters x tokens with LoRA (the frozen weights need no weight gradient;
forward + backward, the usual estimate, with every sample counted at max_length: an upper bound on the
tokens a padded batch holds); utilisation is that rate over the card's dense bf16 peak (a table of
common cards; GPU_PEAK_TFLOPS overrides); with quantised weights the parameters are the catalogue's
(bitsandbytes stores two 4-bit weights a byte). Peak memory is the run's `memory/peak_gpu_mb` (CUDA's
most allocated since the model was built), printed beside the estimate the run made before its
first step (`memory/estimate_mb`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from experiments.config import validate
from experiments.run.train import train

PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "4090": 165.0,
    "3090": 71.0,
    "T4": 65.0,
    "V100": 125.0,
}


class EpochTimer(pl.Callback):
    def __init__(self, warmup: int = 10) -> None:
        self.warmup, self.start, self.seen, self.seconds = warmup, 0.0, 0, 0.0

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, idx: int) -> None:
        if idx == self.warmup:
            torch.cuda.synchronize()
            self.start = time.perf_counter()
        if idx >= self.warmup:
            self.seen += len(batch["labels"])

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        torch.cuda.synchronize()
        if self.start:
            self.seconds = time.perf_counter() - self.start


def peak() -> tuple[str, float | None]:
    name = torch.cuda.get_device_name(0)
    if os.environ.get("GPU_PEAK_TFLOPS"):
        return name, float(os.environ["GPU_PEAK_TFLOPS"])
    return name, next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reviews", type=int, default=8000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--backbone", default="minilm")
    ap.add_argument("--lora-r", type=int, default=0)
    ap.add_argument("--quantize", choices=("none", "nf4", "int8"), default="none")
    ap.add_argument("--lr", type=float, default=None, help="default: 1e-3 with LoRA, else 1e-4")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here")
    cfg = validate(
        {
            "seed": 0,
            "data": {
                "dataset": "womens_clothing_reviews",
                "target": "recommended",
                "subsample": args.reviews,
                "max_length": 128,
                "batch_size": args.batch_size,
            },
            "model": {"backbone": args.backbone, "quantize": args.quantize},
            "peft": {"r": args.lora_r, "alpha": 2 * args.lora_r} if args.lora_r else {},
            "optim": {"lr": args.lr or (1e-3 if args.lora_r else 1e-4)},
            "trainer": {"max_epochs": 1, "accelerator": "gpu", "devices": 1, "precision": args.precision},
            "tracking": {"mode": "disabled"},
        }
    )
    timer = EpochTimer()
    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = train(cfg, Path(tmp), extra_callbacks=[timer])
    rate = timer.seen / timer.seconds
    params = metrics["model/total_params"]
    if args.quantize != "none":  # bitsandbytes packs 4-bit weights two to a byte: count the model's own
        from lightning_modules.weights import CATALOGUE

        if args.backbone in CATALOGUE and CATALOGUE[args.backbone].parameters.endswith("M"):
            params = float(CATALOGUE[args.backbone].parameters[:-1]) * 1e6
    tflops = (4 if args.lora_r else 6) * params * 128 * rate / 1e12
    name, card = peak()
    what = (
        f"{args.backbone}"
        + (f" + LoRA r{args.lora_r}" if args.lora_r else "")
        + (f" on {args.quantize} weights" if args.quantize != "none" else "")
    )
    print(
        f"GPU {name}, {what}, {args.precision}: {rate:.1f} training samples/s ({timer.seen} samples in "
        f"{timer.seconds:.2f} s), {params / 1e6:.1f} M parameters, {tflops:.1f} TFLOP/s model FLOPs"
    )
    peak_mb = metrics.get("memory/peak_gpu_mb") or torch.cuda.max_memory_allocated() / 1024**2
    estimate = metrics.get("memory/estimate_mb")
    print(
        f"peak GPU memory {peak_mb:,.0f} MB (max allocated)"
        + (f" vs the run's estimate {estimate:,.0f} MB ({peak_mb / estimate:.2f}x)" if estimate else "")
    )
    if card:
        print(f"model FLOP utilisation: {tflops / card:.1%} of {card:.0f} TFLOP/s dense bf16")
    print(
        f"val/f1 {metrics['val/f1']:.4f}, test/f1 {metrics['test/f1']:.4f}, fit {metrics['time/fit_s']:.1f} s"
    )


if __name__ == "__main__":
    main()
