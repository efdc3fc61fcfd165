"""Classical parametrised EM showers (GFLASH-style, Grindhammer & Peters, arXiv:hep-ex/0001020).

The fast, approximate baseline of caloforge and the starting point of hybrid (refined) generation:
right on average (mean longitudinal and radial profiles fitted to Geant4), wrong in the details
(fluctuations and correlations). Library entry points:

* :func:`get_detector` -> :class:`FastSimDetector` (from the :mod:`caloforge.fullsim` detector
  description: depth slices in X0, effective X0 / Moliere radius / critical energy);
* :func:`resolve_params` -> :class:`FastSimParams` (shipped fitted set, YAML file or ``"gflash"``);
* :class:`FastSim` ``(detector, params).sample(energies_mev, seed)`` -> (N, V) float32 MeV showers
  (what a refiner calls); :func:`simulate` is the one-call form;
* :func:`fit` (Geant4 file -> parameters), :func:`compare_summaries` (average / fluctuation checks);
* :func:`generate` / :func:`fit_file`: the file-writing jobs behind ``caloforge fastsim [fit]``.
"""

from caloforge.fastsim.compare import compare_summaries, mean_profiles, profile_deviation
from caloforge.fastsim.deposit import VoxelLookup
from caloforge.fastsim.detector import MATERIALS, FastSimDetector, Material, get_detector
from caloforge.fastsim.fit import fit, fit_summary
from caloforge.fastsim.params import (
    FastSimParams,
    LongitudinalParams,
    RadialParams,
    ResponseParams,
    SpotParams,
    gflash_params,
    load_params,
    resolve_params,
    save_params,
    shipped_params,
)
from caloforge.fastsim.run import FastSimConfig, FastSimResult, FitConfig, fit_file, generate, incident_energies
from caloforge.fastsim.sampling import FastSim, ShowerTruth, simulate
from caloforge.fastsim.summary import ShowerSummary, Summariser

__all__ = [
    "MATERIALS",
    "FastSim",
    "FastSimConfig",
    "FastSimDetector",
    "FastSimParams",
    "FastSimResult",
    "FitConfig",
    "LongitudinalParams",
    "Material",
    "RadialParams",
    "ResponseParams",
    "ShowerSummary",
    "ShowerTruth",
    "SpotParams",
    "Summariser",
    "VoxelLookup",
    "compare_summaries",
    "fit",
    "fit_file",
    "fit_summary",
    "generate",
    "get_detector",
    "gflash_params",
    "incident_energies",
    "load_params",
    "mean_profiles",
    "profile_deviation",
    "resolve_params",
    "save_params",
    "shipped_params",
    "simulate",
]
