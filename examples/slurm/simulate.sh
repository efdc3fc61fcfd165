#!/bin/bash
# caloforge simulate (Geant4) as a Slurm job array: one shard per array task.
#
#   sbatch --array=0-19 simulate.sh
#   N=100000 PARTICLE=gamma sbatch --array=0-199 simulate.sh
#
# Shower i depends only on (SEED, i): the shards merged by merge.sh (PREFIX=simulate) equal one
# `caloforge simulate` of all N showers. Geant4 data: export GEANT4_DATA_DIR etc. before sbatch
# (Slurm passes the submitting environment on by default).
#SBATCH --job-name=caloforge-simulate
#SBATCH --array=0-19
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
#SBATCH --time=24:00:00
#SBATCH --output=logs/%x_%A_%a.out
set -euo pipefail

DETECTOR=${DETECTOR:-ds2}
PARTICLE=${PARTICLE:-e-}
ENERGY=${ENERGY:-1:100}
N=${N:-10000}
SEED=${SEED:-1}
OUT_DIR=${OUT_DIR:-shards}
SHARDS=${SLURM_ARRAY_TASK_COUNT:?submit as an array: sbatch --array=0-19 simulate.sh}
INDEX=${SLURM_ARRAY_TASK_ID:?submit as an array: sbatch --array=0-19 simulate.sh}

mkdir -p "$OUT_DIR"
caloforge simulate --detector "$DETECTOR" --particle "$PARTICLE" --energy "$ENERGY" --n "$N" --seed "$SEED" \
    --workers "${SLURM_CPUS_PER_TASK:-1}" --num-shards "$SHARDS" --shard-index "$INDEX" --no-progress \
    --out "$OUT_DIR/simulate_$INDEX.h5"
