"""``caloforge merge SHARDS... --out FILE.h5``: join the shard files of a sharded job."""

from __future__ import annotations

import argparse

from caloforge.commands._common import add_overwrite
from caloforge.io import file_info, merge_shards

NAME = "merge"
HELP = "merge shard files (from --num-shards/--shard-index) into one CaloChallenge file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", help="shard files of one job (any order)")
    parser.add_argument("--out", required=True, help="merged output file")
    add_overwrite(parser)


def run(args: argparse.Namespace) -> int:
    out = merge_shards(args.shards, args.out, overwrite=args.overwrite)
    print(f"merged {len(args.shards)} shard(s), {file_info(out).n_showers} showers -> {out}")
    return 0
