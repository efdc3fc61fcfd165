"""Synthetic showers for testing and timing the metrics (not physics: a smooth parametrised
profile with gamma-distributed voxel fluctuations). Use Geant4 or a trained model for anything
physical; these exist so the evaluation can be checked and benchmarked without them.
"""

from __future__ import annotations

import numpy as np

from caloforge.geometry import CylindricalReadout


def synthetic_showers(
    n: int,
    geometry: CylindricalReadout,
    *,
    seed: int = 0,
    energy_range_mev: tuple[float, float] = (1e3, 1e6),
    depth_scale: float = 1.0,
    width_scale: float = 1.0,
    response: float = 1.0,
    fluctuation_shape: float = 0.5,
    chunk_size: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` showers: (energies (n, 1) float32 MeV log-uniform in ``energy_range_mev``, showers
    (n, V) float32 MeV).

    Mean profile: longitudinal gamma distribution over layers whose maximum grows with ln E
    (times ``depth_scale``), radial exp(-r / R) with R = 4 mm x ``width_scale`` widening with
    depth, uniform in alpha, total E_inc x ``response``; each voxel then fluctuates with a gamma
    distribution of shape ``fluctuation_shape`` (smaller = more sparse/spiky). Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    lo, hi = np.log10(energy_range_mev[0]), np.log10(energy_range_mev[1])
    energies = (10.0 ** rng.uniform(lo, hi, size=(n, 1))).astype(np.float32)
    layer = geometry.voxel_layer
    n_alpha = np.array([lay.n_alpha for lay in geometry.layers])[layer]
    r_lo = np.concatenate([np.tile(lay.r_edges[:-1], lay.n_alpha) for lay in geometry.layers if lay.n_voxels])
    r_hi = np.concatenate([np.tile(lay.r_edges[1:], lay.n_alpha) for lay in geometry.layers if lay.n_voxels])
    r_c = geometry.voxel_r_centre
    t = np.arange(geometry.n_layers) + 0.5
    showers = np.empty((n, geometry.n_voxels), np.float32)
    for start in range(0, n, chunk_size):
        e = energies[start:start + chunk_size, 0].astype(np.float64)
        m = e.size
        t_max = depth_scale * (1.5 + 1.2 * np.log(e / 1e3)) * rng.normal(1.0, 0.08, m)
        b = 0.5
        a = np.maximum(t_max * b + 1.0, 1.05)
        longi = np.exp((a[:, None] - 1.0) * np.log(t[None, :]) - b * t[None, :])
        longi /= longi.sum(axis=1, keepdims=True)
        radius = 4.0 * width_scale * rng.normal(1.0, 0.05, m)[:, None] * (1.0 + 0.02 * layer[None, :])
        weight = np.exp(-r_c[None, :] / radius) * (r_hi ** 2 - r_lo ** 2)[None, :] / n_alpha[None, :]
        layer_norm = weight @ geometry.layer_matrix.astype(np.float64)
        weight /= np.where(layer_norm > 0, layer_norm, 1.0)[:, layer]
        total = e * response * rng.normal(1.0, 0.02 + 0.1 / np.sqrt(e / 1e3), m)
        mean = total[:, None] * longi[:, layer] * weight
        showers[start:start + m] = rng.gamma(fluctuation_shape, mean / fluctuation_shape).astype(np.float32)
    return energies, showers
