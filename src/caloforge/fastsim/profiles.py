"""Vectorised evaluation of the GFLASH functional forms (arXiv:hep-ex/0001020).

Pure functions of a parameter section and numpy arrays; broadcast over any shape. Outputs are
clipped to their physical range (positive radii and widths, 0 <= p <= 1, |rho| < 1) so that a
fitted form evaluated outside the fitted energy range stays usable.
"""

from __future__ import annotations

import numpy as np

from caloforge.fastsim.params import LongitudinalParams, RadialParams, ResponseParams, SpotParams

_MIN_T = 0.05  # X0
_MIN_ALPHA = 0.5
_MIN_INV_WIDTH = 1.0  # sigma(ln T), sigma(ln alpha) <= 1
_MIN_RADIUS = 1e-3  # Moliere radii


def longitudinal_moments(lp: LongitudinalParams, ln_y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Means, widths and correlation of ``(ln T, ln alpha)`` at ``ln_y = ln(E / E_c)``.

    Returns ``(mean_ln_t, mean_ln_alpha, sigma_ln_t, sigma_ln_alpha, rho)``, each shaped like ``ln_y``.
    """
    ln_y = np.asarray(ln_y, dtype=np.float64)
    mean_ln_t = np.log(np.maximum(lp.t_a + lp.t_b * ln_y, _MIN_T))
    mean_ln_alpha = np.log(np.maximum(lp.alpha_a + lp.alpha_b * ln_y, _MIN_ALPHA))
    sigma_ln_t = 1.0 / np.maximum(lp.t_width_a + lp.t_width_b * ln_y, _MIN_INV_WIDTH)
    sigma_ln_alpha = 1.0 / np.maximum(lp.alpha_width_a + lp.alpha_width_b * ln_y, _MIN_INV_WIDTH)
    rho = np.clip(lp.rho_a + lp.rho_b * ln_y, -0.99, 0.99)
    return mean_ln_t, mean_ln_alpha, sigma_ln_t, sigma_ln_alpha, rho


def early_fraction(lp: LongitudinalParams, e_gev: np.ndarray) -> np.ndarray:
    """Fraction of the spots in the early (exponential) component, ``early_a E^-early_b``, in [0, 0.5]."""
    e = np.asarray(e_gev, dtype=np.float64)
    return np.clip(lp.early_a * e ** (-lp.early_b), 0.0, 0.5)


def radial_shape(rp: RadialParams, tau: np.ndarray, ln_e_gev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core radius R_C, tail radius R_T (Moliere radii) and core fraction p at ``tau = t / T``.

    ``tau`` and ``ln_e_gev`` broadcast; the dtype of ``tau`` is kept (float32 in the simulation).
    """
    tau = np.asarray(tau)
    dtype = tau.dtype if tau.dtype in (np.float32, np.float64) else np.float64
    ln_e = np.asarray(ln_e_gev, dtype=dtype)
    rc = np.maximum(dtype.type(rp.rc_a) + dtype.type(rp.rc_b) * ln_e + dtype.type(rp.rc_c) * tau, _MIN_RADIUS)
    shifted = tau - dtype.type(rp.rt_k2)
    k4 = dtype.type(rp.rt_k4_a) + dtype.type(rp.rt_k4_b) * ln_e
    rt = dtype.type(rp.rt_k1) * (
        np.exp(np.minimum(dtype.type(rp.rt_k3) * shifted, 30)) + np.exp(np.minimum(k4 * shifted, 30))
    )
    rt = np.maximum(rt, _MIN_RADIUS)
    p3 = np.maximum(dtype.type(rp.p_3_a) + dtype.type(rp.p_3_b) * ln_e, 0.05)
    x = np.minimum((dtype.type(rp.p_2) - tau) / p3, 30)
    p = np.clip(dtype.type(rp.p_1) * np.exp(x - np.exp(x)), 0, 1)
    return rc.astype(dtype, copy=False), rt.astype(dtype, copy=False), p.astype(dtype, copy=False)


def radial_cdf(r: np.ndarray, rc: np.ndarray, rt: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Fraction of the energy within radius ``r`` (all in Moliere radii):
    ``p r^2 / (r^2 + R_C^2) + (1 - p) r^2 / (r^2 + R_T^2)``."""
    r2 = np.asarray(r) ** 2
    return p * r2 / (r2 + rc**2) + (1 - p) * r2 / (r2 + rt**2)


def mean_response(resp: ResponseParams, ln_e_gev: np.ndarray) -> np.ndarray:
    """mu(E): mean visible fraction of the incident energy."""
    ln_e = np.asarray(ln_e_gev, dtype=np.float64)
    return resp.mean_a + resp.mean_b * ln_e + resp.mean_c * ln_e**2


def resolution(resp: ResponseParams, e_gev: np.ndarray) -> np.ndarray:
    """sigma(E) / mu(E) of the visible energy: sqrt(stochastic^2 / E + constant^2)."""
    e = np.asarray(e_gev, dtype=np.float64)
    return np.sqrt(resp.stochastic**2 / e + resp.constant**2)


def mean_spot_count(spots: SpotParams, e_gev: np.ndarray) -> np.ndarray:
    """Mean number of spots per shower, ``n_per_gev * E ** exponent`` (at least 1)."""
    e = np.asarray(e_gev, dtype=np.float64)
    return np.maximum(spots.n_per_gev * e**spots.exponent, 1.0)
