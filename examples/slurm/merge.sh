#!/bin/bash
# Join the shard files of one job: $OUT_DIR/$PREFIX_*.h5 -> $MERGED.
#
#   sbatch --dependency=afterok:<array job id> merge.sh          # PREFIX=generate (default)
#   PREFIX=simulate sbatch --dependency=afterok:<id> merge.sh
#
# `caloforge merge` refuses shards of different jobs or a missing/duplicate shard (one-line error).
#SBATCH --job-name=caloforge-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=02:00:00
#SBATCH --output=logs/%x_%j.out
set -euo pipefail

PREFIX=${PREFIX:-generate}
OUT_DIR=${OUT_DIR:-shards}
MERGED=${MERGED:-$PREFIX.h5}

caloforge merge "$OUT_DIR"/"$PREFIX"_*.h5 --out "$MERGED"
