#!/bin/bash
# caloforge generate as a Slurm job array: one shard per array task.
#
#   sbatch --array=0-9 generate.sh                            # 10 shards
#   N=5000000 MODEL=/data/run/model.pt sbatch --array=0-49 generate.sh
#
# The array must be 0..M-1 (M = SLURM_ARRAY_TASK_COUNT = number of shards). Each task writes
# $OUT_DIR/generate_<i>.h5; merge.sh (or submit.sh, which chains both) joins them. The merged
# file equals a single `caloforge generate` with the same N/ENERGY/SEED/BATCH bit for bit.
#SBATCH --job-name=caloforge-generate
#SBATCH --array=0-9
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
#SBATCH --time=12:00:00
#SBATCH --output=logs/%x_%A_%a.out
set -euo pipefail

MODEL=${MODEL:-default}
N=${N:-1000000}
ENERGY=${ENERGY:-1:100}
SEED=${SEED:-1}
BATCH=${BATCH:-100}
OUT_DIR=${OUT_DIR:-shards}
EXTRA=${EXTRA:-}   # more `caloforge generate` options, e.g. "--sampler ddim --steps 8"
SHARDS=${SLURM_ARRAY_TASK_COUNT:?submit as an array: sbatch --array=0-9 generate.sh}
INDEX=${SLURM_ARRAY_TASK_ID:?submit as an array: sbatch --array=0-9 generate.sh}

mkdir -p "$OUT_DIR"
# shellcheck disable=SC2086  # EXTRA is a list of options
caloforge generate --model "$MODEL" --n "$N" --energy "$ENERGY" --seed "$SEED" --batch-size "$BATCH" \
    --threads "${SLURM_CPUS_PER_TASK:-1}" --num-shards "$SHARDS" --shard-index "$INDEX" --no-progress \
    $EXTRA --out "$OUT_DIR/generate_$INDEX.h5"
