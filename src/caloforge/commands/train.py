"""``caloforge train``: train a diffusion shower generator on a CaloChallenge file."""

from __future__ import annotations

import argparse

from caloforge.commands._common import add_seed

NAME = "train"
HELP = "train a diffusion shower generator (layer-energy + voxel model) on a CaloChallenge HDF5 file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training configuration .yaml (see configs/)")
    parser.add_argument("--data", required=True, help="training showers (CaloChallenge .h5)")
    parser.add_argument("--val", default=None, help="validation showers (default: a split of --data)")
    parser.add_argument("--out", required=True, help="run folder: model.pt, last.pt, config.yaml, history.csv")
    add_seed(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument("--finetune-layer-model", metavar="MODEL.pt", default=None,
                        help="instead of a full run: train the layer-energy model of MODEL.pt further on --data "
                             "and write OUT/model.pt (voxel model unchanged)")
    parser.add_argument("--layer-steps", type=int, default=3000, help="steps for --finetune-layer-model (default 3000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from caloforge.train import load_train_config, train
    from caloforge.train.distributed import is_main_process

    config = load_train_config(args.config)
    if args.finetune_layer_model:
        from pathlib import Path

        from caloforge.io import check_output_path
        from caloforge.train import finetune_layer_model

        out = check_output_path(Path(args.out) / "model.pt")
        res = finetune_layer_model(args.finetune_layer_model, args.data, out, config=config, steps=args.layer_steps,
                                   val=args.val, seed=args.seed, progress=not args.no_progress)
        print(f"layer model: {res.steps} steps, validation loss {res.val_loss_before:.4f} -> {res.val_loss_after:.4f} "
              f"in {res.wall_s:.0f} s -> {res.model_path}")
        return 0
    result = train(config, args.data, args.out, val=args.val, seed=args.seed, resume=args.resume,
                   progress=not args.no_progress)
    if is_main_process():  # under torchrun: one line, not one per rank
        print(f"trained {result.epochs} epochs ({result.steps} steps, stopped by {result.stopped}); "
              f"best validation loss {result.best_val_loss:.4f} -> {result.model_path}")
    return 0
