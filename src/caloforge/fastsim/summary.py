"""Per-shower summaries that the FastSim fit and its checks compare between Geant4 and FastSim.

The same function summarises a Geant4 file (streamed) and FastSim output, so every estimator
built on it treats both identically (the premise of the indirect-inference fit in
:mod:`caloforge.fastsim.fit`). The CaloChallenge cell threshold of the geometry is applied first.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import scipy.sparse

from caloforge.errors import InputFileError
from caloforge.geometry import CylindricalReadout, cell_threshold_mev
from caloforge.io import file_info, iter_showers


@dataclass
class ShowerSummary:
    """Summaries of N showers on a readout with L layers and M (layer, r-bin) pairs.

    ``e_inc`` (N,) incident energy, MeV; ``layer_e`` (N, L) layer energies, MeV; ``layer_r_e``
    (N, M) energy per (layer, radial bin) summed over alpha, MeV; ``layer_n_hit`` (N, L) voxels
    above the threshold per layer; ``log_e_sum`` / ``log_e_sumsq`` (N,) sums of log10(voxel
    energy / MeV) and of its square over those voxels. All float64 except ``layer_n_hit`` (int64).
    """

    e_inc: np.ndarray
    layer_e: np.ndarray
    layer_r_e: np.ndarray
    layer_n_hit: np.ndarray
    log_e_sum: np.ndarray
    log_e_sumsq: np.ndarray

    def __len__(self) -> int:
        return int(self.e_inc.size)

    @property
    def e_total(self) -> np.ndarray:
        return self.layer_e.sum(axis=1)

    @property
    def e_ratio(self) -> np.ndarray:
        return self.e_total / self.e_inc

    @property
    def n_hit(self) -> np.ndarray:
        """(N,) int64 voxels above the threshold."""
        return self.layer_n_hit.sum(axis=1)

    def log_spread(self) -> float:
        """Pooled standard deviation of log10(voxel energy / MeV) over all recorded voxels."""
        n = max(int(self.n_hit.sum()), 1)
        mean = self.log_e_sum.sum() / n
        return float(np.sqrt(max(self.log_e_sumsq.sum() / n - mean**2, 0.0)))

    def subset(self, index: np.ndarray) -> "ShowerSummary":
        return ShowerSummary(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concatenate(parts: list["ShowerSummary"]) -> "ShowerSummary":
        return ShowerSummary(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                                for f in fields(ShowerSummary)})


class Summariser:
    """Computes :class:`ShowerSummary` for one readout (pair layout and threshold built once).

    ``pair_layer`` (M,), ``pair_r_lo`` / ``pair_r_hi`` (M,) mm: layer and radial range of each
    (layer, r-bin) pair.
    """

    def __init__(self, geometry: CylindricalReadout, threshold_mev: float | None = None) -> None:
        self.geometry = geometry
        self.threshold = cell_threshold_mev(geometry) if threshold_mev is None else float(threshold_mev)
        n_r = np.array([lay.n_r for lay in geometry.layers], dtype=np.int64)
        pair_offset = np.concatenate([[0], np.cumsum(n_r)])
        self.pair_layer = np.repeat(np.arange(geometry.n_layers), n_r)
        self.pair_r_lo = np.concatenate([lay.r_edges[:-1] for lay in geometry.layers])
        self.pair_r_hi = np.concatenate([lay.r_edges[1:] for lay in geometry.layers])
        column = pair_offset[geometry.voxel_layer] + geometry.voxel_r
        self._pair_matrix = scipy.sparse.csr_matrix(
            (np.ones(geometry.n_voxels), (np.arange(geometry.n_voxels), column)),
            shape=(geometry.n_voxels, int(pair_offset[-1])),
        )
        self._layer_matrix = scipy.sparse.csr_matrix(
            (np.ones(geometry.n_voxels), (np.arange(geometry.n_voxels), geometry.voxel_layer)),
            shape=(geometry.n_voxels, geometry.n_layers),
        )

    def __call__(self, energies: np.ndarray, showers: np.ndarray) -> ShowerSummary:
        """Summary of ``showers`` (N, V) MeV with incident ``energies`` (N,) or (N, 1) MeV."""
        e_inc = np.asarray(energies, dtype=np.float64).reshape(-1)
        s = np.asarray(showers, dtype=np.float32)
        if s.shape != (e_inc.size, self.geometry.n_voxels):
            raise ValueError(f"showers shape {s.shape} != ({e_inc.size}, {self.geometry.n_voxels})")
        hit = s >= self.threshold if self.threshold > 0 else s > 0
        s = np.where(hit, s, np.float32(0)).astype(np.float64)
        with np.errstate(divide="ignore"):
            log_e = np.where(hit, np.log10(np.where(hit, s, 1.0)), 0.0)
        return ShowerSummary(
            e_inc=e_inc,
            layer_e=np.asarray(s @ self._layer_matrix),
            layer_r_e=np.asarray(s @ self._pair_matrix),
            layer_n_hit=np.rint(np.asarray(hit.astype(np.float32) @ self._layer_matrix)).astype(np.int64),
            log_e_sum=log_e.sum(axis=1),
            log_e_sumsq=(log_e**2).sum(axis=1),
        )

    def from_file(self, path: str | Path, max_showers: int | None = None,
                  chunk_size: int | None = None) -> ShowerSummary:
        """Stream a CaloChallenge file and summarise it (bounded memory)."""
        info = file_info(path)
        if info.n_voxels != self.geometry.n_voxels:
            raise InputFileError(
                f"{path}: showers have {info.n_voxels} voxels, readout {self.geometry.name} "
                f"has {self.geometry.n_voxels}"
            )
        if info.n_showers == 0:
            raise InputFileError(f"{path}: holds no showers")
        chunk = chunk_size or max(1, (1 << 24) // self.geometry.n_voxels)
        parts = [self(e, s) for e, s in iter_showers(path, chunk_size=chunk, stop=max_showers)]
        summary = ShowerSummary.concatenate(parts)
        if np.any(~np.isfinite(summary.e_inc) | (summary.e_inc <= 0)):
            raise InputFileError(f"{path}: incident energies must be finite and > 0")
        return summary


@dataclass(frozen=True)
class EnergyBinning:
    """Bins in ln(E / MeV) with ``inner_edges`` (B - 1,) between them (the outer bins are open)."""

    inner_edges: np.ndarray

    @classmethod
    def from_energies(cls, e_inc: np.ndarray, n_bins: int) -> "EnergyBinning":
        """One bin per distinct energy if there are at most ``n_bins`` of them, else ``n_bins``
        quantile bins (fewer if quantiles coincide)."""
        ln_e = np.log(np.asarray(e_inc, dtype=np.float64))
        unique = np.unique(np.round(ln_e, 9))
        if unique.size <= n_bins:
            return cls(0.5 * (unique[1:] + unique[:-1]))
        return cls(np.unique(np.quantile(ln_e, np.linspace(0, 1, n_bins + 1)))[1:-1])

    @property
    def n_bins(self) -> int:
        return self.inner_edges.size + 1

    def labels(self, e_inc: np.ndarray) -> np.ndarray:
        """(N,) int64 bin of each incident energy (MeV)."""
        return np.searchsorted(self.inner_edges, np.log(np.asarray(e_inc, dtype=np.float64)), side="right")


def energy_bins(e_inc: np.ndarray, n_bins: int) -> np.ndarray:
    """(N,) int64 bin labels of :meth:`EnergyBinning.from_energies` applied to ``e_inc`` itself."""
    return EnergyBinning.from_energies(e_inc, n_bins).labels(e_inc)


def longitudinal_estimates(summary: ShowerSummary, centres_x0: np.ndarray,
                           min_depth_x0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-shower moment estimates ``(ln T, ln alpha)``, each (N,) float64.

    With mean depth m and variance v of the layer profile (X0) over the layers whose centre is at
    least ``min_depth_x0`` deep: ``alpha = m^2 / v`` and ``T = (alpha - 1) / beta = m - v / m``
    (Gamma-distribution moments; biased by the cut, which the indirect-inference fit cancels);
    alpha is clipped to >= 1.05.
    """
    w = summary.layer_e * (centres_x0 >= min_depth_x0)
    total = np.maximum(w.sum(axis=1), 1e-30)
    m = (w @ centres_x0) / total
    v = np.maximum((w @ centres_x0**2) / total - m**2, 1e-6)
    alpha = np.maximum(m**2 / v, 1.05)
    t_max = (alpha - 1.0) * v / np.maximum(m, 1e-6)
    return np.log(np.maximum(t_max, 1e-3)), np.log(alpha)
