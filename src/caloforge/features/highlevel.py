"""High-level shower features with the CaloChallenge definitions (vectorised, streamable).

All features are per shower, so streaming a file chunk by chunk and concatenating gives exactly
the features of the whole file. Energies in MeV, coordinates in mm. The cell threshold (voxels
below it set to zero) is applied before anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from caloforge.geometry import CylindricalReadout, cell_threshold_mev
from caloforge.io import iter_showers


@dataclass
class ShowerFeatures:
    """High-level features of N showers (L layers, K alpha-binned layers). All float32.

    ``e_inc`` (N,) incident energy, MeV; ``e_layer`` (N, L) layer energy, MeV; ``e_total`` (N,);
    ``e_ratio`` (N,) = e_total / e_inc; ``ec_eta``/``ec_phi``/``ec_r`` (N, K) centre of energy in
    x-like, y-like and radial coordinates, mm (0 for an empty layer); ``width_eta``/``width_phi``/
    ``width_r`` (N, K) sqrt(max(<x^2> - <x>^2, 0)), mm; ``sparsity`` (N, L) fraction of a layer's
    voxels at zero after the threshold; ``layers_alpha`` (K,) which layers the (N, K) arrays cover.
    """

    e_inc: np.ndarray
    e_layer: np.ndarray
    e_total: np.ndarray
    e_ratio: np.ndarray
    ec_eta: np.ndarray
    ec_phi: np.ndarray
    ec_r: np.ndarray
    width_eta: np.ndarray
    width_phi: np.ndarray
    width_r: np.ndarray
    sparsity: np.ndarray
    layers_alpha: np.ndarray

    def __len__(self) -> int:
        return int(self.e_inc.shape[0])

    def as_dict(self) -> dict[str, np.ndarray]:
        """Flat mapping feature name -> (N,) array, e.g. ``E_ratio``, ``E_layer_03``, ``EC_eta_layer_03``."""
        out: dict[str, np.ndarray] = {"E_total": self.e_total, "E_ratio": self.e_ratio}
        for layer in range(self.e_layer.shape[1]):
            out[f"E_layer_{layer:02d}"] = self.e_layer[:, layer]
        for name, arr in (
            ("EC_eta", self.ec_eta), ("EC_phi", self.ec_phi), ("EC_r", self.ec_r),
            ("width_eta", self.width_eta), ("width_phi", self.width_phi), ("width_r", self.width_r),
        ):
            for k, layer in enumerate(self.layers_alpha):
                out[f"{name}_layer_{int(layer):02d}"] = arr[:, k]
        for layer in range(self.sparsity.shape[1]):
            out[f"sparsity_layer_{layer:02d}"] = self.sparsity[:, layer]
        return out

    @staticmethod
    def concatenate(parts: list["ShowerFeatures"]) -> "ShowerFeatures":
        """Join features of consecutive chunks."""
        values = {}
        for f in fields(ShowerFeatures):
            if f.name == "layers_alpha":
                values[f.name] = parts[0].layers_alpha
            else:
                values[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
        return ShowerFeatures(**values)


def apply_threshold(showers: np.ndarray, threshold_mev: float) -> np.ndarray:
    """Copy of ``showers`` with voxels below ``threshold_mev`` set to zero."""
    return np.where(showers < threshold_mev, np.float32(0), showers).astype(np.float32, copy=False)


def layer_sums(values: np.ndarray, geometry: CylindricalReadout) -> np.ndarray:
    """(N, V) -> (N, L) sum over each layer's voxels (0 for layers without voxels).

    Uses a sequential per-row reduction, so a shower's result never depends on which other
    showers share its chunk (streamed and whole-file features are bit-identical).
    """
    out = np.zeros((values.shape[0], geometry.n_layers), dtype=values.dtype)
    filled = np.flatnonzero(geometry.voxels_per_layer > 0)
    if values.shape[0] and filled.size:
        out[:, filled] = np.add.reduceat(values, geometry.layer_offsets[filled], axis=1)
    return out


def _moments(weights: np.ndarray, energy: np.ndarray, coord: np.ndarray, geometry: CylindricalReadout, layers):
    """Centre and width per layer: weights (N, V) float64 energies, energy (N, K), coord (V,) mm."""
    first = layer_sums(weights * coord, geometry)[:, layers]
    second = layer_sums(weights * (coord * coord), geometry)[:, layers]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(energy > 0, first / energy, 0.0)
        mean_sq = np.where(energy > 0, second / energy, 0.0)
    width = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    return mean.astype(np.float32), width.astype(np.float32)


def compute_features(
    energies: np.ndarray,
    showers: np.ndarray,
    geometry: CylindricalReadout,
    threshold_mev: float | None = None,
) -> ShowerFeatures:
    """Features of ``showers`` (N, V) MeV with incident ``energies`` (N,) or (N, 1) MeV.

    ``threshold_mev``: cell threshold; default the CaloChallenge one for the geometry. Use 0 to
    disable. Layer sums are float32; the moments use float64 (the second moment cancels badly
    in float32).
    """
    e_inc = np.asarray(energies, dtype=np.float32).reshape(-1)
    showers = np.asarray(showers, dtype=np.float32)
    if showers.shape != (e_inc.size, geometry.n_voxels):
        raise ValueError(f"showers shape {showers.shape} != ({e_inc.size}, {geometry.n_voxels})")
    threshold = cell_threshold_mev(geometry) if threshold_mev is None else threshold_mev
    if threshold > 0:
        showers = apply_threshold(showers, threshold)
    e_layer = layer_sums(showers, geometry)
    e_total = e_layer.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_ratio = np.where(e_inc > 0, e_total / e_inc, 0.0).astype(np.float32)
    zero_count = layer_sums((showers == 0).astype(np.float32), geometry)
    with np.errstate(divide="ignore", invalid="ignore"):
        sparsity = np.where(geometry.voxels_per_layer > 0, zero_count / geometry.voxels_per_layer, 0.0)

    alpha_layers = geometry.alpha_binned_layers
    weights = showers.astype(np.float64)
    e_alpha = layer_sums(weights, geometry)[:, alpha_layers]
    ec_eta, width_eta = _moments(weights, e_alpha, geometry.voxel_eta, geometry, alpha_layers)
    ec_phi, width_phi = _moments(weights, e_alpha, geometry.voxel_phi, geometry, alpha_layers)
    ec_r, width_r = _moments(weights, e_alpha, geometry.voxel_r_centre, geometry, alpha_layers)
    return ShowerFeatures(
        e_inc=e_inc, e_layer=e_layer.astype(np.float32), e_total=e_total.astype(np.float32), e_ratio=e_ratio,
        ec_eta=ec_eta, ec_phi=ec_phi, ec_r=ec_r, width_eta=width_eta, width_phi=width_phi, width_r=width_r,
        sparsity=sparsity.astype(np.float32), layers_alpha=alpha_layers,
    )


def features_from_file(
    path: str | Path,
    geometry: CylindricalReadout,
    threshold_mev: float | None = None,
    chunk_size: int | None = None,
    max_showers: int | None = None,
) -> ShowerFeatures:
    """Stream a shower file and compute its features chunk by chunk (bounded memory).

    ``chunk_size`` defaults to about 8 M voxel values per chunk (200 ds3 or 1300 ds2 showers).
    """
    chunk_size = chunk_size or max(1, (1 << 23) // geometry.n_voxels)
    parts = [
        compute_features(e, s, geometry, threshold_mev)
        for e, s in iter_showers(path, chunk_size=chunk_size, stop=max_showers)
    ]
    if not parts:
        empty = np.zeros((0, geometry.n_voxels), np.float32)
        return compute_features(np.zeros((0,), np.float32), empty, geometry, threshold_mev)
    return ShowerFeatures.concatenate(parts)
