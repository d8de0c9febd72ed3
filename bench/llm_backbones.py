"""Issue 27's benchmarks, both sides in one run.

    python bench/llm_backbones.py decoders [--reviews 1000] [--epochs 1]
    python bench/llm_backbones.py e5-dangdang [--reviews 3000] [--epochs 2]
    python bench/llm_backbones.py memory [--reviews 300]

`decoders`: SmolLM2-135M-Instruct with LoRA (r 16, peft's default targets, lr 1e-3) vs SmolLM2
fully fine-tuned (lr 3e-5) vs the bundled MiniLM-L6 fully fine-tuned (lr 1e-4), on the same
`--reviews` women's clothing reviews (recommended or not; 80/10/10 split, max_length 64, batch 16),
each a fresh `ecomlab run` process; then the TF-IDF baseline and SmolLM2 prompted zero-shot on the
same split. Prints per side: test macro-F1, training tokens/s and seconds a step, the peak RSS
measured by the run against the estimate it printed before training (ratio; goal within 20%), the
served latency at batch 1 and 32, and the trainable parameters.

`e5-dangdang`: multilingual e5-small fine-tuned on `--reviews` Dangdang reviews (Chinese, positive
or negative) vs the character TF-IDF baseline on the same split.

`memory`: the memory estimate against the resident peak, each a fresh one-epoch `ecomlab run` on
`--reviews` women's clothing reviews at one thread: MiniLM-L6 and e5-small fully fine-tuned at batch
16 and 64 (max_length 64), SmolLM2-135M + LoRA r16 at batch 16 and 48 and fully fine-tuned at 16
(`--only smollm2-135m:False` runs that one alone). Prints each part of the estimate, the peak and
their ratio (goal within 20%). The encoder runs are the ones `CPU_HEAP` was read from
(lightning_modules/memory.py); the decoders and `e5-dangdang` check the estimate on other models
and data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from sweep_common import run_config  # noqa: E402


def data(dataset: str, reviews: int, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "subsample": reviews,
        "max_length": 64,
        "batch_size": 16,
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        **extra,
    }


def side(folder: Path, name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    exp_id, m = run_config(folder, name, cfg)
    manifest = json.loads((folder / "runs" / exp_id / "manifest.json").read_text())
    tokens = manifest["data"]["splits"]["train"] * cfg["data"]["max_length"] * m["epochs_trained"]
    steps = -(-manifest["data"]["splits"]["train"] // cfg["data"]["batch_size"]) * m["epochs_trained"]
    return {
        "test/f1": m["test/f1"],
        "tokens_per_s": tokens / m["time/fit_s"],  # an upper bound: padded to max_length
        "s_per_step": m["time/fit_s"] / steps,
        "peak_mb": m.get("memory/peak_rss_mb") or m["memory/peak_gpu_mb"],
        "estimate_mb": m["memory/estimate_mb"],
        "latency": (m["model/latency_ms"], m["model/latency_ms_b32"]),
        "trainable": m["model/trainable_params"],
        "fit_s": m["time/fit_s"],
    }


def references(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    from experiments.config import validate
    from experiments.run import baseline

    out = [baseline.compute(validate(cfg))]
    prompted = baseline.zero_shot(validate(cfg))
    return out + ([prompted] if prompted else [])


def show(name: str, r: dict[str, Any]) -> None:
    ratio = r["peak_mb"] / r["estimate_mb"]
    print(
        f"{name}: test macro-F1 {r['test/f1']:.4f}; {r['tokens_per_s']:.0f} tokens/s, {r['s_per_step']:.2f} s a step "
        f"({r['fit_s']:.0f} s of training); peak RSS {r['peak_mb']:.0f} MB vs estimate {r['estimate_mb']:.0f} MB "
        f"({ratio:.2f}x); served {r['latency'][0]:.1f} / {r['latency'][1]:.1f} ms at batch 1 / 32; "
        f"{r['trainable']:,} trainable parameters",
        flush=True,
    )


def decoders(folder: Path, reviews: int, epochs: int) -> None:
    common = {
        "seed": 0,
        "data": data("womens_clothing_reviews", reviews, target="recommended"),
        "trainer": {"max_epochs": epochs, "patience": epochs},
        "tracking": {"mode": "disabled"},
    }
    sides = {
        "SmolLM2-135M + LoRA r16": {
            **common,
            "model": {"backbone": "smollm2-135m"},
            "peft": {"r": 16, "alpha": 32},
            "optim": {"lr": 1e-3, "warmup": 0.1},
        },
        "SmolLM2-135M full fine-tuning": {
            **common,
            "model": {"backbone": "smollm2-135m"},
            "optim": {"lr": 3e-5},
        },
        "MiniLM-L6 full fine-tuning": {**common, "model": {"backbone": "minilm"}, "optim": {"lr": 1e-4}},
    }
    results = {name: side(folder, f"side{i}", cfg) for i, (name, cfg) in enumerate(sides.items())}
    for name, r in results.items():
        show(name, r)
    for ref in references(sides["SmolLM2-135M + LoRA r16"]):
        print(
            f"{ref['name']}: test macro-F1 {ref['metrics']['test/f1']:.4f} ({ref['fit_s']:.1f} s)", flush=True
        )
    lora, full, minilm = results.values()
    print(
        f"LoRA / full fine-tuning: F1 {lora['test/f1'] - full['test/f1']:+.4f}, peak RSS "
        f"{lora['peak_mb'] / full['peak_mb']:.2f}x, time a step {lora['s_per_step'] / full['s_per_step']:.2f}x; "
        f"SmolLM2 LoRA vs MiniLM: F1 {lora['test/f1'] - minilm['test/f1']:+.4f}, "
        f"served latency at batch 32 {lora['latency'][1] / minilm['latency'][1]:.1f}x"
    )


def e5_dangdang(folder: Path, reviews: int, epochs: int) -> None:
    cfg = {
        "seed": 0,
        "data": data("dangdang_reviews", reviews),
        "model": {"backbone": "e5-small"},
        "optim": {"lr": 5e-5},
        "trainer": {"max_epochs": epochs, "patience": epochs},
        "tracking": {"mode": "disabled"},
    }
    r = side(folder, "e5", cfg)
    show("e5-small full fine-tuning", r)
    (base,) = references(cfg)
    print(
        f"{base['name']}: test macro-F1 {base['metrics']['test/f1']:.4f}; e5-small {r['test/f1'] - base['metrics']['test/f1']:+.4f}"
    )


def memory(folder: Path, reviews: int, only: list[str] | None = None) -> None:
    mb = 1024**2
    cases = [
        ("minilm", {}, 16),
        ("minilm", {}, 64),
        ("e5-small", {}, 16),
        ("e5-small", {}, 64),
        ("smollm2-135m", {"peft": {"r": 16, "alpha": 32}}, 16),
        ("smollm2-135m", {"peft": {"r": 16, "alpha": 32}}, 48),
        ("smollm2-135m", {}, 16),
    ]
    for backbone, extra, batch in cases:
        if only and not any(o in f"{backbone}:{bool(extra)}:{batch}" for o in only):
            continue
        cfg = {
            "seed": 0,
            "data": {**data("womens_clothing_reviews", reviews, target="recommended"), "batch_size": batch},
            "model": {"backbone": backbone},
            "optim": {"lr": 1e-4},
            # the CPU's resident memory: what CPU_HEAP describes, even where a GPU is present
            "trainer": {"max_epochs": 1, "patience": 1, "threads": 1, "accelerator": "cpu"},
            "tracking": {"mode": "disabled"},
            **extra,
        }
        name = f"{backbone}{' + LoRA r16' if extra else ' full fine-tuning'} at batch {batch}"
        exp_id, m = run_config(folder, name.replace(" ", "_").replace("+", ""), cfg)
        est = json.loads((folder / "runs" / exp_id / "manifest.json").read_text())["memory"]
        parts = ", ".join(
            f"{k} {est[k] / mb:,.0f}"
            for k in ("runtime", "weights", "gradients", "optimizer", "activations", "transient")
        )
        peak, total = m["memory/peak_rss_mb"], est["total"] / mb
        print(
            f"{name} x {est['length']} tokens: estimate {total:,.0f} MB ({parts}); peak {peak:,.0f} MB; "
            f"peak / estimate {peak / total:.2f}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["decoders", "e5-dangdang", "memory"])
    ap.add_argument("--reviews", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument(
        "--only", nargs="*", help="memory: the cases whose BACKBONE:LORA:BATCH contains one of these"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.which == "decoders":
            decoders(Path(tmp), args.reviews or 1000, args.epochs or 1)
        elif args.which == "memory":
            memory(Path(tmp), args.reviews or 300, args.only)
        else:
            e5_dangdang(Path(tmp), args.reviews or 3000, args.epochs or 2)


if __name__ == "__main__":
    main()
