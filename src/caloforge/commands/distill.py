"""``caloforge distill``: consistency-distil a trained diffusion model into a 1-4 step student."""

from __future__ import annotations

import argparse

from caloforge.commands._common import add_seed

NAME = "distill"
HELP = "consistency-distil a trained diffusion model into a student that samples in 1-4 steps"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", required=True, help="model.pt from `caloforge train`, or 'default' (bundled)")
    parser.add_argument("--data", required=True, help="training showers (CaloChallenge .h5, the teacher's geometry)")
    parser.add_argument("--val", default=None, help="validation showers (default: the last 10%% of --data)")
    parser.add_argument("--out", required=True, help="run folder: model.pt, last.pt, config.yaml, history.csv")
    parser.add_argument("--config", default=None, help="distillation settings .yaml (DistillConfig fields; "
                                                       "default: built-in defaults)")
    parser.add_argument("--student", default=None,
                        help="start from this distilled student (fine-tuning, e.g. with shape_weight > 0) "
                             "instead of a copy of the teacher; 'ds2-fast' names the bundled one")
    add_seed(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from caloforge.distill import DistillConfig, distill, load_distill_config

    config = load_distill_config(args.config) if args.config else DistillConfig()
    result = distill(config, args.teacher, args.data, args.out, val=args.val, seed=args.seed, resume=args.resume,
                     progress=not args.no_progress, student=args.student)
    last = result.history[-1] if result.history else {}
    print(f"distilled {result.steps} steps (stopped by {result.stopped}); mean squared error vs the teacher's ODE "
          f"{last.get('val_consistency_mse', float('nan')):.4g} (all levels), {last.get('val_one_step_mse', float('nan')):.4g}"
          f" (one step), lateral-shape MMD {last.get('val_shape_mmd', float('nan')):.3g} -> {result.model_path} (sample with --sampler consistency --steps 1|2|4)")
    return 0
