"""(a) One training epoch through the runner vs a plain PyTorch loop: same model, data, batch size.

    python bench/epoch_overhead.py [--repeats 3] [--subsample 4000]

The runner side is `train(cfg)` itself (Lightning Trainer, rich progress bar, CSV logger, checkpoint
and early-stopping callbacks); a callback times its first training epoch from `on_train_epoch_start`
to the end of the last training batch (validation excluded, as in the plain loop). The plain loop does
the same work by hand: AdamW with the same parameter groups, the warmup/decay schedule, gradient
clipping. Both start from the same seed. Prints both medians and the ratio (target <= 1.05).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from experiments.config import validate
from experiments.config.registry import build_datamodule
from experiments.run.train import train
from lightning_modules import backbones
from lightning_modules.optimization import NO_DECAY


class EpochTimer(pl.Callback):
    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.batches = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 0:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 0:
            self.end = time.perf_counter()
            self.batches += 1


def config(subsample: int):
    return validate(
        {
            "seed": 0,
            "data": {
                "dataset": "womens_clothing_reviews",
                "target": "recommended",
                "subsample": subsample,
                "max_length": 128,
                "batch_size": 32,
            },
            "model": {"backbone": "tiny", "tiny": {"layers": 2, "hidden": 128, "heads": 2}},
            "trainer": {"max_epochs": 1, "limit_val_batches": 1},
            "tracking": {"mode": "disabled"},
        }
    )


def runner_epoch(cfg) -> tuple[float, int]:
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as runs:
        train(cfg, runs, extra_callbacks=[timer])
    return timer.end - timer.start, timer.batches


def plain_epoch(cfg) -> tuple[float, int]:
    from transformers import get_linear_schedule_with_warmup

    dm = build_datamodule(cfg)
    dm.setup()
    pl.seed_everything(cfg.seed, verbose=False)
    torch.use_deterministic_algorithms(True)
    model = backbones.build_model(cfg, len(dm.label_names), dm.tokenizer, dm.label_names)
    decay = [p for n, p in model.named_parameters() if not any(k in n for k in NO_DECAY)]
    no_decay = [p for n, p in model.named_parameters() if any(k in n for k in NO_DECAY)]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.optim.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.optim.lr,
    )
    loader = dm.train_dataloader()
    total = len(loader)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.optim.warmup * total), total)
    model.train()
    start = time.perf_counter()
    n = 0
    for batch in loader:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = F.cross_entropy(logits, batch["labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        sched.step()
        n += 1
    return time.perf_counter() - start, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--subsample", type=int, default=4000)
    args = ap.parse_args()
    cfg = config(args.subsample)
    runner_epoch(cfg)  # warm the caches (assets, tokens, tiny tokenizer)
    runner, plain = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both sides alike
        t, nb_r = runner_epoch(cfg)
        runner.append(t)
        t, nb_p = plain_epoch(cfg)
        plain.append(t)
    assert nb_r == nb_p, (nb_r, nb_p)
    r, p = statistics.median(runner), statistics.median(plain)
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print(f"one epoch, tiny BERT (2x128), {nb_r} batches of 32, max_length 128, {args.repeats} repeats")
    print(f"runner (train(cfg), Lightning): median {r:.3f} s  {[round(x, 3) for x in runner]}")
    print(f"plain PyTorch loop:             median {p:.3f} s  {[round(x, 3) for x in plain]}")
    print(f"ratio runner / plain: {r / p:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
