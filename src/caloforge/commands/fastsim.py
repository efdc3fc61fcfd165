"""``caloforge fastsim``: classical parametrised (GFLASH-style) showers; ``caloforge fastsim fit``: tune them.

Two actions under one command (an optional nested sub-command):

* ``caloforge fastsim --detector ds2 --particle e- --energy 1:100 --n N --seed S --out FILE.h5
  [--params P.yaml|gflash] [--overwrite]`` writes showers (plus ``FILE.params.yaml``, ``FILE.yaml``);
* ``caloforge fastsim fit --data G4.h5 --detector ds2 --particle e- --out P.yaml`` fits the
  parameters to Geant4 showers (plus ``P.fit.yaml`` with the fit config and a comparison).
"""

from __future__ import annotations

import argparse
import sys

from caloforge.commands._common import add_overwrite, add_seed, positive_int
from caloforge.errors import ConfigError

NAME = "fastsim"
HELP = "classical parametrised EM showers (GFLASH-style); 'fastsim fit' fits them to Geant4 showers"

_DETECTOR_HELP = "ds2, ds3, ds1-photons-like, pbwo4 or a detector .yaml file (default ds2)"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", default="ds2", help=_DETECTOR_HELP)
    parser.add_argument("--particle", default="e-", help="e-, e+ or gamma (default e-)")
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="threads (default 2; the output does not depend on it)")
    add_seed(parser)
    add_overwrite(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--energy", default="10",
                        help="incident energy in GeV: E (fixed) or EMIN:EMAX (log-uniform), e.g. 1:100 (default 10)")
    parser.add_argument("--energy-from", metavar="FILE.h5",
                        help="use the incident energies of the first N showers of this file instead of --energy")
    parser.add_argument("--n", type=positive_int, help="number of showers")
    parser.add_argument("--params", help="parameter YAML, or 'gflash' for literature values "
                                         "(default: the fitted set shipped for the detector)")
    parser.add_argument("--out", help="output CaloChallenge .h5 (FILE.params.yaml and FILE.yaml written beside it)")
    parser.add_argument("--compression", choices=("gzip", "lzf", "none"), default="gzip",
                        help="HDF5 compression of the showers (default gzip; lzf is ~2x faster to write, ~25%% larger)")
    sub = parser.add_subparsers(dest="fastsim_action", metavar="{fit}")
    fit = sub.add_parser("fit", help="fit FastSim parameters to Geant4 showers",
                         description="fit FastSim parameters to Geant4 showers of one detector and particle")
    fit.add_argument("--data", required=True, nargs="+", help="Geant4 CaloChallenge .h5 file(s) to fit to")
    fit.add_argument("--out", required=True, help="output parameter .yaml (P.fit.yaml written beside it)")
    _add_common(fit)
    fit.add_argument("--n-sim", type=positive_int, default=2000,
                     help="data showers re-simulated at each fit step (default 2000)")
    fit.add_argument("--iterations", type=positive_int, default=3, help="profile fit iterations (default 3)")
    fit.add_argument("--max-showers", type=positive_int, default=None, help="read at most this many showers per file")
    fit.add_argument("--no-layer-scale", action="store_true", help="do not fit per-layer visible-energy factors")
    fit.add_argument("--no-early", action="store_true",
                     help="do not fit the early exponential component (with --no-layer-scale: pure GFLASH forms)")
    fit.add_argument("--compare-with", metavar="REF.h5",
                     help="after fitting, compare FastSim with this reference file (default: the fit data)")


def run(args: argparse.Namespace) -> int:
    from caloforge.fastsim.run import FastSimConfig, FitConfig, fit_file, generate

    if args.fastsim_action == "fit":
        config = FitConfig(data=args.data, detector=args.detector, particle=args.particle, seed=args.seed,
                           n_iterations=args.iterations, n_sim=args.n_sim, max_showers=args.max_showers,
                           workers=args.workers, layer_scale=not args.no_layer_scale, early=not args.no_early,
                           compare_with=args.compare_with)
        log = None if args.no_progress else (lambda msg: print(msg, file=sys.stderr))
        _, comparison = fit_file(args.out, config, overwrite=args.overwrite, progress=not args.no_progress, log=log)
        print(f"fitted FastSim parameters -> {args.out}")
        if comparison:
            print(f"mean longitudinal profile: max rel. deviation {comparison['long_max_rel']:.3f}, "
                  f"radial {comparison['radial_max_rel']:.3f}; E_ratio mean {comparison['e_ratio_mean_other']:.4f} "
                  f"(reference {comparison['e_ratio_mean_ref']:.4f})")
        return 0
    missing = [flag for flag, value in (("--n", args.n), ("--out", args.out)) if value is None]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} required to generate showers (or use 'caloforge fastsim fit')")
    config = FastSimConfig(detector=args.detector, particle=args.particle, energy=args.energy, n=args.n,
                           seed=args.seed, params=args.params, energy_from=args.energy_from, workers=args.workers,
                           compression=args.compression)
    result = generate(args.out, config, overwrite=args.overwrite, progress=not args.no_progress)
    print(f"fastsim: {result.n_showers} showers in {result.wall_s:.2f} s ({result.showers_per_s:.0f} showers/s) "
          f"-> {result.path} (params {result.params_path.name}, config {result.config_path.name})")
    return 0
