#!/usr/bin/env bash
# One study on several nodes: a SLURM array job, one array task per node, each running the same
# `ecomlab sweep` against the shared storage (docs/cluster.md).
#
#     export ECOMLAB_STORAGE='postgresql://user:SECRET@db.internal/studies'   # not in this file
#     sbatch --array=0-3 sweeps/slurm_sweep.sh sweeps/my-study.yaml /shared/ecomlab-artifacts
#
#SBATCH --job-name=ecomlab-sweep
#SBATCH --nodes=1
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=32
#SBATCH --time=12:00:00
#SBATCH --export=ALL
set -euo pipefail
sweep_file=${1:?usage: sbatch --array=0-N sweeps/slurm_sweep.sh SWEEP_FILE ARTIFACT_DIR}
artifacts=${2:?give the artifact folder every node mounts (or s3://bucket)}
: "${ECOMLAB_STORAGE:?export ECOMLAB_STORAGE (PostgreSQL or MySQL URL) before sbatch}"
gpus=$(nvidia-smi -L | wc -l)
per_trial=${ECOMLAB_DEVICES_PER_TRIAL:-1}   # = the base config's trainer.devices
# each node keeps its own run folder; records are shared through the artifact store
export ECOMLAB_RUNS=${ECOMLAB_RUNS:-$PWD/runs-node-${SLURM_ARRAY_TASK_ID:-0}}
exec ecomlab sweep "$sweep_file" --workers $(( gpus / per_trial )) --devices-per-trial "$per_trial" \
    --artifacts "$artifacts"
