#!/bin/bash
# Data-parallel training on several GPU nodes: one torchrun per node, one process per GPU.
#
#   CONFIG=configs/ds2_electrons.yaml DATA=ds2_train.h5 OUT=runs/ds2 sbatch train_ddp.sh
#
# batch_size in the config is the global batch (split over all processes); results match a
# single-process run. Re-submitting the same script resumes from $OUT/last.pt (e.g. after the
# time limit or a node failure); the number of nodes/GPUs may change between submissions.
#SBATCH --job-name=caloforge-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=24:00:00
#SBATCH --output=logs/%x_%j.out
set -euo pipefail

CONFIG=${CONFIG:?set CONFIG=training .yaml}
DATA=${DATA:?set DATA=training showers .h5}
OUT=${OUT:?set OUT=run folder}
SEED=${SEED:-0}
GPUS=${SLURM_GPUS_ON_NODE:-4}
HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
RESUME=""
if [ -f "$OUT/last.pt" ]; then RESUME=--resume; fi

srun torchrun --nnodes="$SLURM_NNODES" --nproc_per_node="$GPUS" \
    --rdzv_id="$SLURM_JOB_ID" --rdzv_backend=c10d --rdzv_endpoint="$HEAD:29500" \
    -m caloforge train --config "$CONFIG" --data "$DATA" --out "$OUT" --seed "$SEED" --no-progress $RESUME
