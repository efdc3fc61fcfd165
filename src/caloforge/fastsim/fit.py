"""Fit FastSim parameters to Geant4 showers of one detector.

Method (moments and least squares, scipy.optimize), in the spirit of GFLASH's own tuning
(arXiv:hep-ex/0001020: per-shower Gamma fits, then the means, widths and correlation of
``(ln T, ln alpha)`` against ``ln y``), made consistent with *indirect inference*: every
auxiliary estimate is computed identically on the Geant4 showers and on FastSim showers simulated
at the same incident energies with common random numbers, and the parameters are moved until the
two agree. That removes the estimators' biases (binned depth, truncation at the back, noise from
finite spot counts) without modelling them.

1. longitudinal: per shower, moments of the layer profile give ``alpha = m^2 / v`` and
   ``T = m - v / m``; in bins of ln y the means, variances and covariance of ``(ln T, ln alpha)``
   are matched (means additively, (co)variances additively), then the GFLASH forms are refitted;
2. radial: in (energy bin, layer) groups, least squares of the mean radial bin fractions (inside
   the readout) against the core + tail form at ``tau = t / T``; corrected in coefficient space;
3. layer scales (optional): the ratio of Geant4 to FastSim mean layer energies;
4. spots: the mean spot count per energy bin is tuned until the number of voxels above threshold
   matches (then ``n(E) = n0 E^k`` by linear regression in log-log), and the spot-energy Gamma
   shape until the spread of log voxel energies matches (bounded scalar minimisation);
5. response: mean and variance of E_total / E_inc per energy bin, divided by / net of the
   containment FastSim itself produces; ``mu(E)`` by polynomial least squares in ln E and
   ``sigma^2 = a^2 / E + c^2`` by non-negative least squares.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import least_squares, minimize_scalar, nnls

from caloforge.errors import InputFileError
from caloforge.fastsim.detector import FastSimDetector
from caloforge.fastsim.params import (
    FastSimParams,
    LongitudinalParams,
    RadialParams,
    ResponseParams,
    gflash_params,
)
from caloforge.fastsim.profiles import early_fraction, longitudinal_moments, radial_cdf, radial_shape, resolution
from caloforge.fastsim.sampling import FastSim
from caloforge.fastsim.summary import EnergyBinning, ShowerSummary, Summariser, longitudinal_estimates

__all__ = ["fit", "fit_summary"]

_LONG_KEYS = ("t", "alpha", "t_width", "alpha_width", "rho")


# ============================================================== longitudinal
@dataclass
class _LongStats:
    """Per energy bin (B,): mean ln y, counts, means/variances/covariance of (ln T, ln alpha)."""

    x: np.ndarray
    n: np.ndarray
    mean_t: np.ndarray
    mean_a: np.ndarray
    var_t: np.ndarray
    var_a: np.ndarray
    cov: np.ndarray


def _long_stats(ln_t: np.ndarray, ln_a: np.ndarray, ln_y: np.ndarray, labels: np.ndarray) -> _LongStats:
    n_bins = int(labels.max()) + 1
    n = np.bincount(labels, minlength=n_bins).astype(np.float64)

    def mean(v: np.ndarray) -> np.ndarray:
        return np.bincount(labels, weights=v, minlength=n_bins) / np.maximum(n, 1)

    mt, ma = mean(ln_t), mean(ln_a)
    dt, da = ln_t - mt[labels], ln_a - ma[labels]
    return _LongStats(mean(ln_y), n, mt, ma, mean(dt * dt), mean(da * da), mean(dt * da))


def _fit_form(form: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
              err: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Least squares of ``form(theta, x)`` to ``y`` with a weak prior towards ``ref`` (it only
    decides directions the data leave free, e.g. the slope when all showers share one energy)."""
    scale = 10.0 * np.maximum(np.abs(ref), 0.1)
    ok = (err > 0) & np.isfinite(y)

    def residuals(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([(form(theta, x[ok]) - y[ok]) / err[ok], (theta - ref) / scale])

    return least_squares(residuals, ref, method="lm" if ok.sum() >= 2 else "trf").x


def _fit_longitudinal_forms(stats: _LongStats, ref: LongitudinalParams) -> LongitudinalParams:
    x, n = stats.x, np.maximum(stats.n, 2)
    sd_t, sd_a = np.sqrt(np.maximum(stats.var_t, 1e-8)), np.sqrt(np.maximum(stats.var_a, 1e-8))
    rho = np.clip(stats.cov / (sd_t * sd_a), -0.99, 0.99)

    def log_lin(th: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(th[0] + th[1] * xx, 1e-3))

    def inv_lin(th: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return 1.0 / np.maximum(th[0] + th[1] * xx, 0.5)

    def lin(th: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return th[0] + th[1] * xx

    t = _fit_form(log_lin, x, stats.mean_t, sd_t / np.sqrt(n), np.array([ref.t_a, ref.t_b]))
    a = _fit_form(log_lin, x, stats.mean_a, sd_a / np.sqrt(n), np.array([ref.alpha_a, ref.alpha_b]))
    wt = _fit_form(inv_lin, x, sd_t, sd_t / np.sqrt(2 * n), np.array([ref.t_width_a, ref.t_width_b]))
    wa = _fit_form(inv_lin, x, sd_a, sd_a / np.sqrt(2 * n), np.array([ref.alpha_width_a, ref.alpha_width_b]))
    r = _fit_form(lin, x, rho, np.maximum(1 - rho**2, 0.05) / np.sqrt(n), np.array([ref.rho_a, ref.rho_b]))
    return replace(ref, t_a=t[0], t_b=t[1], alpha_a=a[0], alpha_b=a[1], t_width_a=wt[0], t_width_b=wt[1],
                   alpha_width_a=wa[0], alpha_width_b=wa[1], rho_a=r[0], rho_b=r[1])


def _corrected_long_stats(model: LongitudinalParams, data: _LongStats, sim: _LongStats) -> _LongStats:
    """Bin statistics the model must have so that its simulated estimates match the data's."""
    m_t, m_a, s_t, s_a, rho = longitudinal_moments(model, data.x)
    var_t = np.maximum(s_t**2 + data.var_t - sim.var_t, 1e-4)
    var_a = np.maximum(s_a**2 + data.var_a - sim.var_a, 1e-4)
    cov = np.clip(rho * s_t * s_a + data.cov - sim.cov, -0.98 * np.sqrt(var_t * var_a), 0.98 * np.sqrt(var_t * var_a))
    return _LongStats(data.x, data.n, m_t + data.mean_t - sim.mean_t, m_a + data.mean_a - sim.mean_a, var_t, var_a, cov)


# ============================================================== radial
_RADIAL_FIELDS = (
    "rc_a", "rc_b", "rc_c", "rt_k1", "rt_k2", "rt_k3", "rt_k4_a", "rt_k4_b", "p_1", "p_2", "p_3_a", "p_3_b",
)


def _radial_vector(rp: RadialParams) -> np.ndarray:
    return np.array([getattr(rp, f) for f in _RADIAL_FIELDS])


def _radial_from_vector(theta: np.ndarray) -> RadialParams:
    return RadialParams(**{f: float(v) for f, v in zip(_RADIAL_FIELDS, theta)})


class _RadialData:
    """Mean radial bin fractions per (energy bin, layer) group, flattened to rows (group, pair)."""

    def __init__(self, summary: ShowerSummary, labels: np.ndarray, ln_t: np.ndarray,
                 summariser: Summariser, detector: FastSimDetector) -> None:
        n_bins = int(labels.max()) + 1
        counts = np.maximum(np.bincount(labels, minlength=n_bins), 1)
        pair_e = np.stack([summary.layer_r_e[labels == b].sum(axis=0) for b in range(n_bins)])  # (B, M)
        layer_e = np.stack([summary.layer_e[labels == b].sum(axis=0) for b in range(n_bins)])  # (B, L)
        t_bin = np.exp(np.bincount(labels, weights=ln_t, minlength=n_bins) / counts)
        ln_e_bin = np.bincount(labels, weights=np.log(summary.e_inc / 1000.0), minlength=n_bins) / counts
        pl = summariser.pair_layer
        in_layer = layer_e[:, pl]  # (B, M)
        frac_layer = layer_e / np.maximum(layer_e.sum(axis=1, keepdims=True), 1e-30)
        use = (frac_layer[:, pl] > 2e-3) & (in_layer > 0)
        b_idx, m_idx = np.nonzero(use)
        self.frac = pair_e[b_idx, m_idx] / in_layer[b_idx, m_idx]
        self.tau = detector.layer_centres_x0[pl[m_idx]] / t_bin[b_idx]
        self.ln_e = ln_e_bin[b_idx]
        rm = detector.layer_moliere_mm[pl[m_idx]]
        self.lo = summariser.pair_r_lo[m_idx] / rm
        self.hi = summariser.pair_r_hi[m_idx] / rm
        r_max = np.array([lay.r_edges[-1] for lay in detector.geometry.layers])
        self.r_max = r_max[pl[m_idx]] / rm
        self.weight = np.sqrt(frac_layer[b_idx, pl[m_idx]]) / np.sqrt(self.frac + 1e-3)

    def model(self, rp: RadialParams) -> np.ndarray:
        rc, rt, p = radial_shape(rp, self.tau, self.ln_e)
        inside = np.maximum(radial_cdf(self.r_max, rc, rt, p), 1e-12)
        return (radial_cdf(self.hi, rc, rt, p) - radial_cdf(self.lo, rc, rt, p)) / inside


def _fit_radial_forms(data: _RadialData, ref: RadialParams) -> RadialParams:
    theta0 = _radial_vector(ref)
    scale = 10.0 * np.maximum(np.abs(theta0), 0.1)

    def residuals(theta: np.ndarray) -> np.ndarray:
        model = data.model(_radial_from_vector(theta))
        return np.concatenate([(model - data.frac) * data.weight, (theta - theta0) / scale])

    return _radial_from_vector(least_squares(residuals, theta0, method="trf", x_scale="jac").x)


# ============================================================== spots and response
def _bin_means(values: np.ndarray, labels: np.ndarray, n_bins: int) -> np.ndarray:
    n = np.maximum(np.bincount(labels, minlength=n_bins), 1)
    return np.bincount(labels, weights=values, minlength=n_bins) / n


def _early_power_law(e_gev: np.ndarray, fraction: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """``early_a``, ``early_b`` of ``f = a E^-b`` through per-bin fractions (log-log least squares)."""
    x, y = np.log(e_gev), np.log(np.clip(fraction, 1e-4, 0.5))
    if x.size < 2 or np.ptp(x) < 0.3:
        return {"early_a": float(np.exp(np.average(y, weights=weights))), "early_b": 0.0}
    slope, c = np.polyfit(x, y, 1, w=np.sqrt(weights))
    return {"early_a": float(np.exp(c)), "early_b": float(-slope)}


def _fit_power_law(e_gev: np.ndarray, n_spots: np.ndarray, weights: np.ndarray, exponent: float) -> tuple[float, float]:
    """``n = n0 E^k`` through per-bin spot counts (log-log least squares; k kept if one bin)."""
    x, y = np.log(e_gev), np.log(n_spots)
    if x.size < 2 or np.ptp(x) < 0.3:
        return float(np.exp(np.average(y - exponent * x, weights=weights))), exponent
    k, c = np.polyfit(x, y, 1, w=np.sqrt(weights))
    return float(np.exp(c)), float(k)


# ============================================================== driver
@dataclass
class _Context:
    """Simulation side of the fit: FastSim at a fixed subset of the data energies."""

    detector: FastSimDetector
    summariser: Summariser
    energies: np.ndarray
    labels: np.ndarray
    seed: int
    n_workers: int
    progress: bool

    def simulate(self, params: FastSimParams, repeat: int = 1) -> ShowerSummary:
        """FastSim summary at ``energies`` (each ``repeat`` times), common random numbers."""
        sim = FastSim(self.detector, params, n_workers=self.n_workers)
        energies = np.tile(self.energies, repeat)
        parts = [self.summariser(energies[lo:hi], s)
                 for lo, hi, s in sim.iter_chunks(energies, self.seed, progress=self.progress, desc="fastsim fit")]
        return ShowerSummary.concatenate(parts)


def fit_summary(
    data: ShowerSummary,
    detector: FastSimDetector,
    *,
    particles: list[str] | None = None,
    initial: FastSimParams | None = None,
    seed: int = 0,
    n_iterations: int = 3,
    n_sim: int = 2000,
    n_energy_bins: int = 8,
    n_workers: int = 2,
    layer_scale: bool = True,
    early: bool = True,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> FastSimParams:
    """Fit parameters to a :class:`ShowerSummary` of Geant4 showers (see the module docstring).

    Data statistics use every shower; FastSim is re-simulated at the energies of a fixed random
    subset of ``n_sim`` showers at each step (with the same seed: common random numbers).
    ``n_iterations``: indirect-inference iterations for the profiles; ``layer_scale``: also fit the
    per-layer visible-energy factors; ``early``: also fit the early exponential component (both
    False: pure GFLASH forms).
    """
    say = log or (lambda _msg: None)
    summariser = Summariser(detector.geometry)
    binning = EnergyBinning.from_energies(data.e_inc, n_energy_bins)
    n_bins = binning.n_bins
    labels = binning.labels(data.e_inc)
    subset = np.sort(np.random.default_rng(seed).choice(len(data), size=min(n_sim, len(data)), replace=False))
    e_sim = data.e_inc[subset]
    ctx = _Context(detector, summariser, e_sim, binning.labels(e_sim), seed, n_workers, progress)
    sim_labels = ctx.labels
    start = initial or gflash_params(detector, particles)
    params = replace(start, particles=list(particles or start.particles), stack=detector.stack_summary())
    centres = detector.layer_centres_x0
    min_depth_x0 = 1.5  # the per-shower moments skip the first 1.5 X0 (early component, primary's ionisation)
    ln_y = np.log(data.e_inc / detector.critical_mev)
    sim_ln_y = np.log(e_sim / detector.critical_mev)
    e_gev_bin = np.exp(_bin_means(np.log(data.e_inc / 1000.0), labels, n_bins))
    counts_bin = np.bincount(labels, minlength=n_bins).astype(np.float64)

    # --- auxiliary estimates on the data (fixed)
    d_lnt, d_lna = longitudinal_estimates(data, centres, min_depth_x0)
    d_long = _long_stats(d_lnt, d_lna, ln_y, labels)
    d_rad = _fit_radial_forms(_RadialData(data, labels, d_lnt, summariser, detector), start.radial)
    d_occ = _bin_means(data.n_hit.astype(np.float64), labels, n_bins)
    d_spread = data.log_spread()
    d_profile = (data.layer_e / data.e_inc[:, None]).mean(axis=0)
    ratio = data.e_ratio
    d_mean = _bin_means(ratio, labels, n_bins)
    d_var = _bin_means((ratio - d_mean[labels]) ** 2, labels, n_bins)
    say(f"data: {len(data)} showers in {n_bins} energy bins, mean E_ratio {ratio.mean():.4f}; "
        f"FastSim at {e_sim.size} of their energies per step")

    # --- first guess: direct estimates, response = mean data ratio (all refined below)
    params = replace(params, response=ResponseParams(mean_a=float(ratio.mean())),
                     longitudinal=_fit_longitudinal_forms(d_long, params.longitudinal), radial=d_rad)

    def profile_step(p: FastSimParams) -> FastSimParams:
        sim = ctx.simulate(p)
        s_lnt, s_lna = longitudinal_estimates(sim, centres, min_depth_x0)
        target = _corrected_long_stats(p.longitudinal, d_long, _long_stats(s_lnt, s_lna, sim_ln_y, sim_labels))
        longitudinal = _fit_longitudinal_forms(target, p.longitudinal)
        s_rad = _fit_radial_forms(_RadialData(sim, sim_labels, s_lnt, summariser, detector), start.radial)
        theta = _radial_vector(p.radial) + _radial_vector(d_rad) - _radial_vector(s_rad)
        return replace(p, longitudinal=longitudinal, radial=_radial_from_vector(theta))

    def layer_scale_step(p: FastSimParams, n_steps: int) -> FastSimParams:
        """Visible-energy factor per layer = Geant4 / FastSim mean layer energy (layers with >= 0.1 %
        of the peak; the others take the nearest fitted value), normalised to mean 1."""
        layers = np.arange(d_profile.size)
        for _ in range(n_steps):
            sim = ctx.simulate(p, repeat=4)  # the mean of early / late layers is noisy: average more showers
            s_profile = (sim.layer_e / sim.e_inc[:, None]).mean(axis=0)
            scale = np.asarray(p.response.layer_scale or np.ones(d_profile.size), dtype=np.float64)
            use = (d_profile >= 1e-3 * d_profile.max()) & (s_profile > 0)
            fitted = scale[use] * d_profile[use] / s_profile[use]
            scale = np.clip(np.interp(layers, layers[use], fitted), 0.25, 4.0)
            scale /= np.average(scale, weights=d_profile)
            p = replace(p, response=replace(p.response, layer_scale=[float(v) for v in scale]))
        return p

    def spot_count_step(p: FastSimParams, n_steps: int) -> FastSimParams:
        n_bin = np.maximum(p.spots.n_per_gev * e_gev_bin ** p.spots.exponent, 1.0)
        slope = np.full(n_bins, 0.7)
        prev: tuple[np.ndarray, np.ndarray] | None = None
        for _ in range(n_steps):
            occ = _bin_means(ctx.simulate(p).n_hit.astype(np.float64), sim_labels, n_bins)
            if prev is not None:
                d_log_n, d_log_occ = np.log(n_bin / prev[0]), np.log(occ / prev[1])
                ok = np.abs(d_log_n) > 1e-3
                slope[ok] = np.clip(d_log_occ[ok] / d_log_n[ok], 0.1, 1.5)
            prev = (n_bin.copy(), occ)
            n_bin = n_bin * np.exp(np.clip(np.log(d_occ / np.maximum(occ, 1e-9)) / slope, -2, 2))
            n0, k = _fit_power_law(e_gev_bin, n_bin, counts_bin, p.spots.exponent)
            p = replace(p, spots=replace(p.spots, n_per_gev=n0, exponent=k))
        return p

    d_first_hits = _bin_means(data.layer_n_hit[:, 0].astype(np.float64), labels, n_bins)

    def early_step(p: FastSimParams, n_steps: int) -> FastSimParams:
        """Early-component fraction per energy bin tuned (secant steps in log-log) until the mean
        number of hit voxels in the first layer matches, then ``f = a E^-b`` by regression."""
        lp = p.longitudinal
        f_bin = np.maximum(early_fraction(lp, e_gev_bin), 0.01) if lp.early_a > 0 else np.full(n_bins, 0.01)
        slope = np.full(n_bins, 0.5)
        prev: tuple[np.ndarray, np.ndarray] | None = None
        for _ in range(n_steps):
            p = replace(p, longitudinal=replace(p.longitudinal, **_early_power_law(e_gev_bin, f_bin, counts_bin)))
            sim_hits = ctx.simulate(p).layer_n_hit[:, 0].astype(np.float64)
            hits = np.maximum(_bin_means(sim_hits, sim_labels, n_bins), 1e-3)
            if prev is not None:
                d_log_f, d_log_h = np.log(f_bin / prev[0]), np.log(hits / prev[1])
                ok = np.abs(d_log_f) > 1e-3
                slope[ok] = np.clip(d_log_h[ok] / d_log_f[ok], 0.05, 1.5)
            prev = (f_bin.copy(), hits)
            step = np.clip(np.log(np.maximum(d_first_hits, 1e-3) / hits) / slope, -2, 2)
            f_bin = np.clip(f_bin * np.exp(step), 1e-4, 0.5)
        return replace(p, longitudinal=replace(p.longitudinal, **_early_power_law(e_gev_bin, f_bin, counts_bin)))

    def spot_shape_step(p: FastSimParams) -> FastSimParams:
        def mismatch(log_k: float) -> float:
            trial = replace(p, spots=replace(p.spots, energy_shape=float(10**log_k)))
            return (ctx.simulate(trial).log_spread() - d_spread) ** 2

        best = minimize_scalar(mismatch, bounds=(-1.0, 2.5), method="bounded", options={"xatol": 0.05, "maxiter": 12})
        shape = float(10**best.x)
        if mismatch(6.0) < best.fun:  # equal spots fit better
            shape = 1e6
        return replace(p, spots=replace(p.spots, energy_shape=shape))

    d_rel_var = d_var / np.maximum(d_mean, 1e-6) ** 2
    # statistical weight of a bin's relative variance: sqrt(n / 2) / variance
    var_weight = np.sqrt(counts_bin / 2.0) / np.maximum(d_rel_var, 1e-8)

    def fit_resolution(intrinsic: np.ndarray) -> tuple[float, float]:
        """(stochastic, constant) with stochastic^2 / E + constant^2 ~ ``intrinsic`` (B,) (NNLS)."""
        if n_bins < 2:
            return float(np.sqrt(max(intrinsic[0], 0.0) * e_gev_bin[0])), 0.0
        design = np.stack([1.0 / e_gev_bin, np.ones(n_bins)], axis=1) * var_weight[:, None]
        sq, _ = nnls(design, np.maximum(intrinsic, 0.0) * var_weight)
        return float(np.sqrt(sq[0])), float(np.sqrt(sq[1]))

    def response_step(p: FastSimParams) -> FastSimParams:
        sim = ctx.simulate(replace(p, response=ResponseParams(layer_scale=p.response.layer_scale)))
        s_ratio = sim.e_ratio
        c_mean = _bin_means(s_ratio, sim_labels, n_bins)
        c_var = _bin_means((s_ratio - c_mean[sim_labels]) ** 2, sim_labels, n_bins)
        # mu(E) = a + b ln E + c ln^2 E is linear in (a, b, c): the FastSim mean ratio of bin k is
        # mean_i(c_i mu(E_i)) with c_i the ratio simulated with mu = 1 (the containment), so the
        # coefficients follow from weighted linear least squares against the data bin means
        ln_e_sim = np.log(ctx.energies / 1000.0)
        design = np.stack([_bin_means(s_ratio * ln_e_sim**j, sim_labels, n_bins) for j in range(3)], axis=1)
        deg = min(2, n_bins - 1)
        w = np.sqrt(counts_bin)
        coef = np.zeros(3)
        coef[: deg + 1] = np.linalg.lstsq(design[:, : deg + 1] * w[:, None], d_mean * w, rcond=None)[0]
        # resolution: the data's relative variance net of what FastSim produces without it ...
        intrinsic = d_rel_var - c_var / np.maximum(c_mean, 1e-6) ** 2
        stochastic, constant = fit_resolution(intrinsic)
        p = replace(p, response=replace(p.response, mean_a=float(coef[0]), mean_b=float(coef[1]),
                                        mean_c=float(coef[2]), stochastic=stochastic, constant=constant))
        # ... then corrected once with a full simulation (the two do not add exactly)
        full = ctx.simulate(p).e_ratio
        f_mean = _bin_means(full, sim_labels, n_bins)
        f_rel_var = _bin_means((full - f_mean[sim_labels]) ** 2, sim_labels, n_bins) / np.maximum(f_mean, 1e-6) ** 2
        model = resolution(p.response, e_gev_bin) ** 2
        stochastic, constant = fit_resolution(model + d_rel_var - f_rel_var)
        return replace(p, response=replace(p.response, stochastic=stochastic, constant=constant))

    for it in range(n_iterations):
        params = profile_step(params)
        say(f"profiles: iteration {it + 1}/{n_iterations} done")
    params = spot_count_step(params, 3)
    if early:
        params = early_step(params, 4)
        say(f"early component: f = {params.longitudinal.early_a:.4f} E^-{params.longitudinal.early_b:.3f}")
    params = spot_shape_step(params)
    params = spot_count_step(params, 2)
    if early:
        params = early_step(params, 2)
    say(f"spots: n = {params.spots.n_per_gev:.1f} E^{params.spots.exponent:.3f}, shape {params.spots.energy_shape:.3g}")
    for _ in range(2):  # profiles again with spots and early component in place, alternating with the scales
        params = profile_step(params)
        if layer_scale:
            params = layer_scale_step(params, 1)
    params = response_step(params)
    say(f"response: mu(10 GeV) = {params.response.mean_a + params.response.mean_b * np.log(10):.4f}")
    return params


def fit(
    showers_files: str | Path | Sequence[str | Path],
    detector: FastSimDetector,
    *,
    particle: str = "e-",
    initial: FastSimParams | None = None,
    seed: int = 0,
    max_showers: int | None = None,
    n_iterations: int = 3,
    n_sim: int = 2000,
    n_workers: int = 2,
    layer_scale: bool = True,
    early: bool = True,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> FastSimParams:
    """Fit FastSim parameters to the Geant4 showers in ``showers_files`` (one or several
    CaloChallenge HDF5 files on the readout of ``detector``) and return them with their provenance.

    ``particle``: the particle of the files (e- parameters also serve e+); ``max_showers``: read
    at most N showers of each file; other options as in :func:`fit_summary`.
    """
    paths = [Path(showers_files)] if isinstance(showers_files, (str, Path)) else [Path(p) for p in showers_files]
    if not paths:
        raise InputFileError("no shower file given to fit")
    summariser = Summariser(detector.geometry)
    summary = ShowerSummary.concatenate([summariser.from_file(p, max_showers=max_showers) for p in paths])
    names = ", ".join(p.name for p in paths)
    if len(summary) < 20:
        raise InputFileError(f"{names}: {len(summary)} showers are too few to fit FastSim (need at least 20)")
    particles = ["e-", "e+"] if particle in ("e-", "e+") else [particle]
    params = fit_summary(summary, detector, particles=particles, initial=initial, seed=seed,
                         n_iterations=n_iterations, n_sim=n_sim, n_workers=n_workers, layer_scale=layer_scale,
                         early=early, progress=progress, log=log)
    provenance = {
        "source": "caloforge fastsim fit (indirect inference, see caloforge.fastsim.fit)",
        "data": names,
        "n_showers": len(summary),
        "n_sim": min(n_sim, len(summary)),
        "seed": seed,
        "n_iterations": n_iterations,
        "layer_scale": layer_scale,
        "early": early,
        "particle": particle,
    }
    return replace(params, detector=detector.name, provenance=provenance)
