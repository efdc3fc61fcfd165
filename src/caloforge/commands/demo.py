"""``caloforge demo``: Geant4 -> bundled diffusion model + FastSim -> evaluation, on a small sample."""

from __future__ import annotations

import argparse

from caloforge.commands._common import add_overwrite, add_seed, positive_int
from caloforge.demo import DemoConfig, run_demo

NAME = "demo"
HELP = "run the whole pipeline on a small sample (Geant4, diffusion, FastSim, evaluation)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="caloforge-demo", help="output folder (default ./caloforge-demo)")
    parser.add_argument("--n", type=positive_int, default=DemoConfig.n, help="Geant4 showers (default %(default)s)")
    parser.add_argument("--workers", type=positive_int, default=DemoConfig.workers, help="Geant4 processes")
    parser.add_argument("--sampler", default=DemoConfig.sampler,
                        help="diffusion sampler (default: the one the bundled model recommends)")
    parser.add_argument("--steps", type=positive_int, default=DemoConfig.steps, help="sampler steps")
    add_seed(parser)
    add_overwrite(parser)


def run(args: argparse.Namespace) -> int:
    config = DemoConfig(n=args.n, seed=args.seed, workers=args.workers, sampler=args.sampler, steps=args.steps)
    run_demo(args.out, config, overwrite=args.overwrite)
    return 0
