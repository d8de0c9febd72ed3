#!/usr/bin/env bash
# The prepared GPU check (at most 13 minutes of checks after the pip install, on one NVIDIA GPU). Run from the repo root:
#     bash bench/gpu_check.sh
# It installs what it needs with pip (into .venv-gpu unless a venv is active) and prints every figure:
#  (a) one MiniLM fine-tuning trial in bf16-mixed: samples/s and model FLOP utilisation (the same
#      trial's CPU figure is in bench/README.md: "one training epoch" and the MiniLM rows);
#  (b) a 4-trial sweep of the small text study with --workers = the number of GPUs;
#  (c) TPE + Hyperband vs random search to a target (bench/sweep_pruning.py, price-long), bounded
#      to 3 minutes: what finished is printed;
#  (d) a SmolLM2-135M QLoRA trial (LoRA r16 on nf4 base weights, bitsandbytes) in bf16-mixed: samples/s,
#      peak GPU memory against the run's estimate, model FLOP utilisation; and the same for Gemma 3
#      270M when its terms were accepted on this machine (`ecomlab backbones --accept gemma3-270m`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
  python3 -m venv .venv-gpu
  . .venv-gpu/bin/activate
fi
python -m pip install -q -e '.[dev]'
python -m pip install -q bitsandbytes || echo "bitsandbytes did not install: (d) will say so"
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA GPU'; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

echo "== (a) one MiniLM trial, bf16-mixed"
timeout 150 python bench/gpu_trial.py || echo "(a) did not finish in 150 s"

echo "== (b) 4-trial sweep, --workers = GPUs"
gpus=$(python -c "import torch; print(torch.cuda.device_count())")
tmp=$(mktemp -d)
python - "$tmp" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "bench")
import sweep_common
sweep_common.write(Path(sys.argv[1]), "gpu4", budget={"n_trials": 4}, sampler={"type": "random", "seed": 0},
                   pruner={"type": "none"})
PY
start=$(date +%s)
timeout 120 ecomlab sweep "$tmp/gpu4.yaml" --workers "$gpus" --runs-dir "$tmp/runs" | tail -12 || echo "(b) did not finish in 120 s"
echo "(b) wall: $(( $(date +%s) - start )) s for 4 trials on $gpus GPU(s)"

echo "== (c) TPE + Hyperband vs random to a target (bounded)"
timeout 180 python bench/sweep_pruning.py --workload price-long --seeds 2 3 --jobs 4 || echo "(c) stopped at 180 s"

echo "== (d) SmolLM2-135M QLoRA (nf4 + LoRA r16), bf16-mixed"
timeout 150 python bench/gpu_trial.py --backbone smollm2-135m --lora-r 16 --quantize nf4 --batch-size 32 \
  || echo "(d) did not finish in 150 s"
if python -c "from lightning_modules.weights import accepted; raise SystemExit(not accepted('gemma3-270m'))"; then
  timeout 150 python bench/gpu_trial.py --backbone gemma3-270m --lora-r 16 --quantize nf4 --batch-size 32 \
    || echo "(d) Gemma did not finish in 150 s"
else
  echo "(d) Gemma 3 270M skipped: its terms are not accepted here (ecomlab backbones --terms gemma3-270m)"
fi
