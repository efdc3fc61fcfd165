"""``caloforge train-refiner``: train the cold-diffusion refiner (FastSim -> Geant4 bridge)."""

from __future__ import annotations

import argparse

from caloforge.commands._common import add_overwrite, add_seed

NAME = "train-refiner"
HELP = "train a cold-diffusion refiner that carries FastSim showers to Geant4 ones (for `caloforge refine`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="Geant4 training showers (CaloChallenge .h5)")
    parser.add_argument("--base", default="ds2-full",
                        help="diffusion model whose transforms and layer model the refiner uses "
                             "(model.pt from `caloforge train`, or 'ds2-full': the bundled diffusion model, the default)")
    parser.add_argument("--config", default=None, help="refiner training .yaml (see configs/refiner_ds2.yaml)")
    parser.add_argument("--out", required=True, help="run folder: model.pt, history.csv, config.yaml")
    add_seed(parser)
    add_overwrite(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from caloforge.hybrid import BridgeTrainConfig, load_bridge_train_config, train_bridge

    config = load_bridge_train_config(args.config) if args.config else BridgeTrainConfig()
    result = train_bridge(config, args.data, args.out, base=args.base, seed=args.seed, overwrite=args.overwrite,
                          progress=not args.no_progress)
    print(f"trained the refiner for {result.steps} steps (stopped by {result.stopped}); best validation loss "
          f"{result.best_val_loss:.4f} -> {result.model_path} (use: caloforge refine --model {result.model_path})")
    return 0
