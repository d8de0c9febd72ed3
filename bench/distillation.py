"""(b) of the export/serve issue: distilled students against their MiniLM teacher, in one run.

    python bench/distillation.py [--seeds 3] [--runs DIR]

Trains the teacher (sweeps/teachers/womens_clothing_reviews.yaml: MiniLM-L6 fully fine-tuned on
3,000 women's clothing reviews, recommended or not, max_length 64; reused when `--runs` already holds
it), then two students, each with and without `distill.teacher` (alpha 0.7, temperature 2), on the
same split, for each seed: the `tiny` BERT (2 x 128, its own WordPiece vocabulary, 6 epochs) and
MiniLM cut to its bottom 2 layers (`model.layers: 2`, 2 epochs). Prints test macro-F1 (mean and std
over seeds) and the served latency at batch 1 and 32 (`model/latency_ms*`, sequences at max_length),
the speed-up over the teacher at batch 32 and the F1 change against the teacher and against the
same student trained on the labels alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
import sweep_common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEACHER = ROOT / "sweeps" / "teachers" / "womens_clothing_reviews.yaml"
STUDENTS = {
    "tiny 2x128": {
        "model": {"backbone": "tiny"},
        "optim": {"lr": 1e-3, "warmup": 0.1},
        "trainer": {"max_epochs": 6, "patience": 6},
    },
    "MiniLM, bottom 2 layers": {
        "model": {"backbone": "minilm", "layers": 2},
        "optim": {"lr": 1e-4, "warmup": 0.1},
        "trainer": {"max_epochs": 2, "patience": 2},
    },
}


def run(folder: Path, name: str, cfg: dict) -> dict:
    exp_id, metrics = sweep_common.run_config(folder, name, cfg)
    return {"id": exp_id, **metrics}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--runs", type=Path, default=None, help="folder to keep the runs in (default: a temporary one)"
    )
    args = ap.parse_args()
    teacher_cfg = {**yaml.safe_load(TEACHER.read_text()), "tracking": {"mode": "disabled"}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.runs or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        teacher = run(folder, "teacher", teacher_cfg)
        rows = [("teacher: MiniLM-L6, full fine-tuning", [teacher["test/f1"]], teacher)]
        for student, extra in STUDENTS.items():
            for distill in (False, True):
                f1s, last = [], {}
                for seed in range(args.seeds):
                    cfg = {**teacher_cfg, **extra, "seed": seed}
                    if distill:
                        cfg["distill"] = {"teacher": teacher["id"], "alpha": 0.7, "temperature": 2.0}
                    last = run(folder, f"{student.split()[0]}-{distill}-{seed}", cfg)
                    f1s.append(last["test/f1"])
                rows.append((f"{student}, {'distilled' if distill else 'labels only'}", f1s, last))
    print(
        f"women's clothing (recommended), 3,000 reviews, max_length 64, {args.seeds} seed(s), {os.cpu_count()} CPUs"
    )
    print(
        f"{'model':42} {'test F1':>16} {'ms b1':>7} {'ms b32':>7} {'x b32':>6} {'dF1 vs T':>8} {'dF1 vs labels':>13}"
    )
    t_f1, t_b32 = teacher["test/f1"], teacher["model/latency_ms_b32"]
    for i, (name, f1s, m) in enumerate(rows):
        mean = statistics.mean(f1s)
        std = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        vs_labels = (
            f"{100 * (mean - statistics.mean(rows[i - 1][1])):+13.2f}" if "distilled" in name else " " * 13
        )
        print(
            f"{name:42} {mean:8.4f} ± {std:.4f} {m['model/latency_ms']:7.2f} {m['model/latency_ms_b32']:7.2f} "
            f"{t_b32 / m['model/latency_ms_b32']:6.2f} {100 * (mean - t_f1):+8.2f} {vs_labels}"
        )


if __name__ == "__main__":
    main()
