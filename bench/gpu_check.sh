#!/usr/bin/env bash
# The prepared GPU check (at most 8 minutes of checks after the pip install, on one NVIDIA GPU). Run from the repo root:
#     bash bench/gpu_check.sh
# It installs what it needs with pip (into .venv-gpu unless a venv is active) and prints every figure:
#  (a) one MiniLM fine-tuning trial in bf16-mixed: samples/s and model FLOP utilisation (the same
#      trial's CPU figure is in bench/README.md: "one training epoch" and the MiniLM rows);
#  (b) a 4-trial sweep of the small text study with --workers = the number of GPUs;
#  (c) TPE + Hyperband vs random search to a target (bench/sweep_pruning.py, price-long), bounded
#      to 3 minutes: what finished is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
  python3 -m venv .venv-gpu
  . .venv-gpu/bin/activate
fi
python -m pip install -q -e '.[dev]'
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
