"""How close FastSim is to a reference (Geant4) on average, and how wrong in fluctuations.

Small, dependency-free numbers used by the tests, the fit's provenance and ``docs/fastsim.md``;
the full CaloChallenge metrics (classifier AUC, FPD, separation powers) live in
:mod:`caloforge.evaluate`. Fluctuation numbers are *pooled within energy bins* (each quantity minus
its energy-bin mean), so that the spread of incident energies does not masquerade as a fluctuation.
"""

from __future__ import annotations

import numpy as np

from caloforge.fastsim.detector import FastSimDetector
from caloforge.fastsim.summary import EnergyBinning, ShowerSummary, Summariser

__all__ = ["mean_profiles", "profile_deviation", "compare_summaries"]


def mean_profiles(summary: ShowerSummary, summariser: Summariser) -> tuple[np.ndarray, np.ndarray]:
    """Mean longitudinal profile (L,) and mean radial profile, both as fractions of E_inc.

    The radial profile is per radial bin summed over layers (R,) for regular readouts, per
    (layer, r-bin) pair (M,) otherwise.
    """
    e = summary.e_inc[:, None]
    longitudinal = (summary.layer_e / e).mean(axis=0)
    pairs = (summary.layer_r_e / e).mean(axis=0)
    geo = summariser.geometry
    if geo.is_regular:
        return longitudinal, pairs.reshape(geo.n_layers, -1).sum(axis=0)
    return longitudinal, pairs


def profile_deviation(reference: np.ndarray, other: np.ndarray, min_fraction: float = 0.05) -> dict[str, float]:
    """``max_rel``: largest |other / reference - 1| over bins holding at least ``min_fraction`` of
    the reference maximum; ``l1``: sum |other - reference| / sum reference (all bins)."""
    ref, oth = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    use = ref >= min_fraction * ref.max()
    return {
        "max_rel": float(np.max(np.abs(oth[use] / ref[use] - 1.0))),
        "l1": float(np.abs(oth - ref).sum() / ref.sum()),
    }


def _pooled(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``values`` (N, ...) minus their energy-bin means."""
    n_bins = int(labels.max()) + 1
    out = np.array(values, dtype=np.float64, copy=True)
    for b in range(n_bins):
        sel = labels == b
        out[sel] -= out[sel].mean(axis=0)
    return out


def _shower_shape(summary: ShowerSummary, summariser: Summariser, detector: FastSimDetector) -> dict[str, np.ndarray]:
    total = np.maximum(summary.e_total, 1e-30)
    depth = summary.layer_e @ detector.layer_centres_x0 / total
    r_mid = 0.5 * (summariser.pair_r_lo + summariser.pair_r_hi)
    width = summary.layer_r_e @ r_mid / total
    return {"e_ratio": summary.e_ratio, "depth": depth, "radius": width}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def compare_summaries(reference: ShowerSummary, other: ShowerSummary, detector: FastSimDetector,
                      n_energy_bins: int = 8) -> dict[str, float]:
    """Average agreement and fluctuation mismatch of ``other`` (FastSim) against ``reference``.

    Keys: ``long_max_rel`` / ``long_l1`` and ``radial_max_rel`` / ``radial_l1`` (mean profiles, see
    :func:`profile_deviation`, bins with >= 5 % of the peak); ``e_ratio_mean_ref`` / ``_other``,
    ``e_ratio_std_ref`` / ``_other``;
    ``std_ratio_<q>`` = pooled std of q in other / in reference for q = e_ratio, depth (energy-weighted
    mean depth, X0), radius (energy-weighted mean radius, mm); ``corr_<a>_<b>_ref`` / ``_other``: pooled
    correlations; ``layer_corr_mad``: mean |difference| of the pooled correlation matrices of the
    layer energy fractions (layers with >= 1 % of the mean energy); ``occupancy_ratio``: mean voxels
    above threshold, other / reference; ``log_spread_ref`` / ``_other``: std of log10 voxel energy.
    """
    summariser = Summariser(detector.geometry)
    out: dict[str, float] = {}
    long_r, rad_r = mean_profiles(reference, summariser)
    long_o, rad_o = mean_profiles(other, summariser)
    for key, dev in (("long", profile_deviation(long_r, long_o)), ("radial", profile_deviation(rad_r, rad_o))):
        out[f"{key}_max_rel"], out[f"{key}_l1"] = dev["max_rel"], dev["l1"]
    out["e_ratio_mean_ref"], out["e_ratio_mean_other"] = float(reference.e_ratio.mean()), float(other.e_ratio.mean())
    out["e_ratio_std_ref"], out["e_ratio_std_other"] = float(reference.e_ratio.std()), float(other.e_ratio.std())
    binning = EnergyBinning.from_energies(reference.e_inc, n_energy_bins)
    lab_r, lab_o = binning.labels(reference.e_inc), binning.labels(other.e_inc)
    shape_r = {k: _pooled(v, lab_r) for k, v in _shower_shape(reference, summariser, detector).items()}
    shape_o = {k: _pooled(v, lab_o) for k, v in _shower_shape(other, summariser, detector).items()}
    for key in shape_r:
        out[f"std_ratio_{key}"] = float(shape_o[key].std() / max(shape_r[key].std(), 1e-30))
    for a, b in (("e_ratio", "depth"), ("e_ratio", "radius"), ("depth", "radius")):
        out[f"corr_{a}_{b}_ref"] = _corr(shape_r[a], shape_r[b])
        out[f"corr_{a}_{b}_other"] = _corr(shape_o[a], shape_o[b])
    frac_r = reference.layer_e / reference.e_inc[:, None]
    frac_o = other.layer_e / other.e_inc[:, None]
    mean_r = frac_r.mean(axis=0)
    use = mean_r >= 0.01 * mean_r.sum()
    c_r = np.corrcoef(_pooled(frac_r[:, use], lab_r), rowvar=False)
    c_o = np.corrcoef(_pooled(frac_o[:, use], lab_o), rowvar=False)
    upper = np.triu_indices(int(use.sum()), 1)
    out["layer_corr_mad"] = float(np.nanmean(np.abs(c_r - c_o)[upper]))
    out["occupancy_ratio"] = float(other.n_hit.mean() / max(reference.n_hit.mean(), 1e-30))
    out["log_spread_ref"], out["log_spread_other"] = reference.log_spread(), other.log_spread()
    return out
