"""``caloforge refine``: hybrid simulation, FastSim showers refined by a trained diffusion model (SDEdit)."""

from __future__ import annotations

import argparse

from caloforge.commands._common import add_overwrite, add_seed, positive_int

NAME = "refine"
HELP = "refine FastSim showers with a trained diffusion model (SDEdit: noise to t0, sample back to 0)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from caloforge.diffusion.samplers import SAMPLERS
    from caloforge.hybrid import LAYER_MODES

    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--fastsim-from",
                     help="CaloChallenge file of FastSim showers to refine (its incident energies are kept)")
    src.add_argument("--energy", help="run FastSim here at this energy in GeV: E (fixed) or EMIN:EMAX (log-uniform)")
    parser.add_argument("--n", type=positive_int, default=None, help="number of showers (needed with --energy)")
    parser.add_argument("--particle", default="e-", help="FastSim particle with --energy (default e-)")
    parser.add_argument("--model", default="ds2-full",
                        help="a refiner from `caloforge train-refiner` (cold diffusion), or a diffusion model for "
                             "SDEdit: model.pt from `caloforge train` or 'ds2-full' (bundled; the default)")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--t0", type=float, default=None,
                       help="start noise as a fraction of the schedule in [0, 1] (0: no change; default 0.5)")
    level.add_argument("--sigma0", type=float, default=None, help="start noise as a noise level sigma (>= 0)")
    parser.add_argument("--steps", type=positive_int, default=4, help="sampler noise levels from t0 to 0 (default 4)")
    parser.add_argument("--sampler", default="dpmpp2m", choices=sorted(SAMPLERS), help="sampler (default dpmpp2m)")
    parser.add_argument("--layers", default="refine", choices=LAYER_MODES,
                        help="layer energies: refine FastSim's with the layer model (default), keep FastSim's, or "
                             "draw fresh ones from the layer model")
    parser.add_argument("--layer-steps", type=positive_int, default=8,
                        help="steps of the layer-energy model (default 8)")
    parser.add_argument("--batch-size", type=positive_int, default=100, help="showers per network call (default 100)")
    parser.add_argument("--out", required=True, help="output .h5 (options written as .yaml beside it)")
    add_seed(parser)
    add_overwrite(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from caloforge.hybrid import refine_file

    t0 = 0.5 if args.t0 is None and args.sigma0 is None else args.t0
    result = refine_file(
        args.out, args.model, fastsim_from=args.fastsim_from, energy=args.energy, n=args.n, t0=t0, sigma0=args.sigma0,
        steps=args.steps, sampler=args.sampler, layers=args.layers, layer_steps=args.layer_steps,
        batch_size=args.batch_size, seed=args.seed, particle=args.particle, overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(f"refined {result.n_showers} showers in {result.wall_s:.1f} s ({result.showers_per_s:.1f} showers/s) "
          f"-> {result.path} (config {result.config_path})")
    return 0
