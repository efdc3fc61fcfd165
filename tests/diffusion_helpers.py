"""Builders shared by the diffusion/nn/transforms/train tests: a small readout and showers on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from caloforge.geometry import CylindricalReadout
from caloforge.io import write_showers


def small_geometry() -> CylindricalReadout:
    """A regular readout of 6 layers x 8 alpha x 4 r (192 voxels): fast to train on."""
    return CylindricalReadout.regular("small", n_layers=6, n_alpha=8, n_r=4, r_bin_size_mm=5.0)


def toy_showers(n: int, geometry: CylindricalReadout, seed: int = 0, smooth: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(energies (n, 1) float32 MeV, log-uniform 1-100 GeV; showers (n, V) float32 MeV): a gamma-like
    longitudinal profile, exponential radial fall-off, random alpha modulation and sparse voxels.
    ``smooth``: no random fluctuations (each shower a deterministic function of its energy)."""
    f = 0.0 if smooth else 1.0
    rng = np.random.default_rng(seed)
    energies = (1e3 * 10 ** rng.uniform(0, 2, size=(n, 1))).astype(np.float32)
    layer = geometry.voxel_layer / max(geometry.n_layers - 1, 1)
    r = geometry.voxel_r_centre
    depth = 0.2 + 0.1 * np.log10(energies / 1e3) + f * 0.05 * rng.standard_normal((n, 1))
    profile = np.exp(-((layer[None, :] - depth) ** 2) / 0.08) * np.exp(-r[None, :] / 6.0)
    if not smooth:
        profile *= 1.0 + 0.3 * np.cos(geometry.voxel_alpha_centre[None, :] - rng.uniform(0, 6.3, size=(n, 1)))
        profile *= rng.gamma(2.0, 0.5, size=profile.shape) * (rng.random(profile.shape) < 0.7)
    showers = profile / profile.sum(1, keepdims=True) * energies * (0.95 + f * rng.normal(0, 0.03, size=(n, 1)))
    return energies, showers.astype(np.float32)


def write_toy_file(path: Path, n: int, geometry: CylindricalReadout, seed: int = 0, smooth: bool = False) -> Path:
    energies, showers = toy_showers(n, geometry, seed, smooth)
    return write_showers(path, energies, showers, {"geometry": geometry.name}, overwrite=True)
