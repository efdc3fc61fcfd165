"""``caloforge simulate``: Geant4 reference showers in CaloChallenge HDF5 format."""

from __future__ import annotations

import argparse

from caloforge.commands._common import add_overwrite, add_seed, positive_int

NAME = "simulate"
HELP = "simulate reference showers with Geant4 (geant4_pybind) into a CaloChallenge HDF5 file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", default="ds2",
                        help="ds2, ds3, ds1-photons-like, pbwo4 or a detector .yaml file (default ds2)")
    parser.add_argument("--particle", default="e-", help="e-, e+ or gamma (default e-)")
    parser.add_argument("--energy", default="10",
                        help="incident energy in GeV: E (fixed) or EMIN:EMAX (log-uniform), e.g. 1:100 (default 10)")
    parser.add_argument("--n", type=positive_int, required=True, help="number of showers (of the whole job)")
    parser.add_argument("--workers", type=positive_int, default=1, help="worker processes (default 1)")
    parser.add_argument("--num-shards", type=positive_int, default=1,
                        help="split the job into this many shards (batch systems; default 1)")
    parser.add_argument("--shard-index", type=int, default=0, help="which shard to simulate, 0-based (default 0)")
    parser.add_argument("--chunk-size", type=int, default=0,
                        help="showers per worker task and file flush (default: automatic, at most 100)")
    parser.add_argument("--out", required=True, help="output CaloChallenge .h5 file (config written as .yaml beside it)")
    add_seed(parser)
    add_overwrite(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from caloforge.fullsim import simulate

    result = simulate(
        args.out, args.detector, args.particle, args.energy, args.n, seed=args.seed, workers=args.workers,
        num_shards=args.num_shards, shard_index=args.shard_index, chunk_size=args.chunk_size,
        overwrite=args.overwrite, progress=not args.no_progress,
    )
    print(f"simulated {result.n_showers} showers ({result.geant4_version}) in {result.wall_s:.1f} s, "
          f"median {result.cpu_s_median:.3f} CPU s/shower -> {result.path} (config {result.config_path})")
    return 0
