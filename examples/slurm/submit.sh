#!/bin/bash
# Submit a sharded job and its merge in one go (the merge waits for every shard to succeed).
#
#   ./submit.sh generate 10        # or: ./submit.sh simulate 20
# Options of the job go through the environment (N, ENERGY, SEED, MODEL, ...; see the scripts).
set -euo pipefail

KIND=${1:?usage: submit.sh generate|simulate SHARDS}
SHARDS=${2:?usage: submit.sh generate|simulate SHARDS}
HERE=$(cd "$(dirname "$0")" && pwd)

mkdir -p logs
array=$(sbatch --parsable --array=0-$((SHARDS - 1)) "$HERE/$KIND.sh")
PREFIX=$KIND sbatch --dependency=afterok:"$array" "$HERE/merge.sh"
