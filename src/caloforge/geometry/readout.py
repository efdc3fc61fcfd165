"""Cylindrical calorimeter readout: layers of (alpha, r) bins, the CaloChallenge voxelisation.

Voxel order (flat index): layer-major, then alpha, then r (r fastest), as in the CaloChallenge.
Layers may differ in radial edges and alpha bin count (dataset 1); such geometries are *irregular*
and are mapped to a padded ``(L, A_max, R_max)`` grid with a mask.

Conventions: radii in mm; alpha bin ``a`` of a layer with ``n`` bins covers
``[-pi + 2 pi a / n, -pi + 2 pi (a + 1) / n)`` (i.e. ``a = floor((atan2(y, x) + pi) / (2 pi) * n)``),
its centre is the middle of that interval; eta = r cos(alpha), phi = r sin(alpha).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from caloforge.errors import CaloforgeError


@dataclass(frozen=True, eq=False)
class LayerBinning:
    """Binning of one readout layer.

    ``r_edges``: (n_r + 1,) float64 radial bin edges in mm, increasing (a single edge = no voxels);
    ``n_alpha``: number of angular bins (1 = not alpha-binned).
    """

    r_edges: np.ndarray
    n_alpha: int

    def __post_init__(self) -> None:
        edges = np.asarray(self.r_edges, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "r_edges", edges)
        if edges.size < 1:
            raise CaloforgeError("layer binning: r_edges must hold at least one edge")
        if np.any(np.diff(edges) <= 0):
            raise CaloforgeError(f"layer binning: r_edges must increase, got {edges.tolist()}")
        if int(self.n_alpha) < 1:
            raise CaloforgeError(f"layer binning: n_alpha must be >= 1, got {self.n_alpha}")
        object.__setattr__(self, "n_alpha", int(self.n_alpha))

    @property
    def n_r(self) -> int:
        return self.r_edges.size - 1

    @property
    def n_voxels(self) -> int:
        return self.n_r * self.n_alpha if self.n_r > 0 else 0

    def same_as(self, other: "LayerBinning") -> bool:
        return self.n_alpha == other.n_alpha and np.array_equal(self.r_edges, other.r_edges)


@dataclass(frozen=True, eq=False)
class CylindricalReadout:
    """An ordered list of :class:`LayerBinning` with voxel bookkeeping.

    ``name`` identifies the geometry in files and checkpoints (e.g. ``"ds2"``);
    ``particle`` is informational (from the binning XML).
    """

    name: str
    layers: tuple[LayerBinning, ...]
    particle: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise CaloforgeError(f"geometry {self.name!r}: needs at least one layer")
        if self.n_voxels == 0:
            raise CaloforgeError(f"geometry {self.name!r}: has no voxels")

    # ---------------------------------------------------------------- construction
    @classmethod
    def regular(
        cls, name: str, n_layers: int, n_alpha: int, n_r: int, r_bin_size_mm: float, particle: str = ""
    ) -> "CylindricalReadout":
        """A regular readout: ``n_layers`` identical layers of ``n_alpha`` x ``n_r`` bins."""
        edges = np.round(np.arange(n_r + 1) * float(r_bin_size_mm), 10)
        layer = LayerBinning(edges, n_alpha)
        return cls(name, tuple(layer for _ in range(int(n_layers))), particle)

    # ---------------------------------------------------------------- sizes
    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @cached_property
    def voxels_per_layer(self) -> np.ndarray:
        """(L,) int64 number of voxels of each layer."""
        return np.array([layer.n_voxels for layer in self.layers], dtype=np.int64)

    @cached_property
    def layer_offsets(self) -> np.ndarray:
        """(L + 1,) int64: voxels of layer l are ``[offsets[l], offsets[l+1])``."""
        return np.concatenate([[0], np.cumsum(self.voxels_per_layer)]).astype(np.int64)

    @property
    def n_voxels(self) -> int:
        return int(sum(layer.n_voxels for layer in self.layers))

    @cached_property
    def is_regular(self) -> bool:
        """True when every layer has the same radial edges and alpha bin count."""
        first = self.layers[0]
        return first.n_voxels > 0 and all(layer.same_as(first) for layer in self.layers[1:])

    @cached_property
    def alpha_binned_layers(self) -> np.ndarray:
        """(K,) int64 indices of layers with more than one alpha bin."""
        return np.array([i for i, lay in enumerate(self.layers) if lay.n_alpha > 1 and lay.n_r > 0], dtype=np.int64)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """Padded grid shape ``(L, A_max, R_max)``."""
        return (
            self.n_layers,
            max(layer.n_alpha for layer in self.layers),
            max(layer.n_r for layer in self.layers),
        )

    # ---------------------------------------------------------------- index conversions
    @cached_property
    def voxel_layer(self) -> np.ndarray:
        """(V,) int64 layer of each flat voxel."""
        return np.repeat(np.arange(self.n_layers), self.voxels_per_layer)

    @cached_property
    def voxel_alpha(self) -> np.ndarray:
        """(V,) int64 alpha bin of each flat voxel."""
        parts = [np.repeat(np.arange(lay.n_alpha), lay.n_r) for lay in self.layers if lay.n_voxels]
        return np.concatenate(parts).astype(np.int64)

    @cached_property
    def voxel_r(self) -> np.ndarray:
        """(V,) int64 radial bin of each flat voxel."""
        parts = [np.tile(np.arange(lay.n_r), lay.n_alpha) for lay in self.layers if lay.n_voxels]
        return np.concatenate(parts).astype(np.int64)

    def flat_index(self, layer: Any, alpha: Any, r: Any) -> np.ndarray:
        """Flat voxel index of (layer, alpha, r) (scalars or arrays). Raises on out-of-range bins."""
        layer, alpha, r = (np.asarray(x, dtype=np.int64) for x in (layer, alpha, r))
        if np.any((layer < 0) | (layer >= self.n_layers)):
            raise CaloforgeError(f"geometry {self.name}: layer index out of range [0, {self.n_layers})")
        n_alpha = np.array([lay.n_alpha for lay in self.layers])[layer]
        n_r = np.array([lay.n_r for lay in self.layers])[layer]
        if np.any((alpha < 0) | (alpha >= n_alpha) | (r < 0) | (r >= n_r)):
            raise CaloforgeError(f"geometry {self.name}: alpha or r index out of range for its layer")
        return self.layer_offsets[layer] + alpha * n_r + r

    def layer_alpha_r(self, index: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inverse of :meth:`flat_index`: (layer, alpha, r) of flat voxel indices."""
        index = np.asarray(index, dtype=np.int64)
        if np.any((index < 0) | (index >= self.n_voxels)):
            raise CaloforgeError(f"geometry {self.name}: voxel index out of range [0, {self.n_voxels})")
        return self.voxel_layer[index], self.voxel_alpha[index], self.voxel_r[index]

    # ---------------------------------------------------------------- voxel centres
    @cached_property
    def voxel_r_centre(self) -> np.ndarray:
        """(V,) float64 radial bin centre in mm."""
        parts = [
            np.tile(0.5 * (lay.r_edges[1:] + lay.r_edges[:-1]), lay.n_alpha) for lay in self.layers if lay.n_voxels
        ]
        return np.concatenate(parts)

    @cached_property
    def voxel_alpha_centre(self) -> np.ndarray:
        """(V,) float64 alpha bin centre in rad, in [-pi, pi); 0 for layers without alpha binning."""
        n_alpha = np.array([lay.n_alpha for lay in self.layers])[self.voxel_layer]
        centre = -np.pi + (self.voxel_alpha + 0.5) * 2.0 * np.pi / n_alpha
        return np.where(n_alpha > 1, centre, 0.0)

    @cached_property
    def voxel_eta(self) -> np.ndarray:
        """(V,) float64 x-like coordinate r cos(alpha) of the voxel centre, mm."""
        return self.voxel_r_centre * np.cos(self.voxel_alpha_centre)

    @cached_property
    def voxel_phi(self) -> np.ndarray:
        """(V,) float64 y-like coordinate r sin(alpha) of the voxel centre, mm."""
        return self.voxel_r_centre * np.sin(self.voxel_alpha_centre)

    @cached_property
    def layer_matrix(self) -> np.ndarray:
        """(V, L) float32 one-hot voxel->layer matrix: ``showers @ layer_matrix`` = layer energies."""
        mat = np.zeros((self.n_voxels, self.n_layers), dtype=np.float32)
        mat[np.arange(self.n_voxels), self.voxel_layer] = 1.0
        return mat

    # ---------------------------------------------------------------- grid conversion
    @cached_property
    def grid_index(self) -> np.ndarray:
        """(V,) int64 position of each flat voxel in the flattened padded grid (L * A_max * R_max)."""
        _, a_max, r_max = self.grid_shape
        return (self.voxel_layer * a_max + self.voxel_alpha) * r_max + self.voxel_r

    @cached_property
    def grid_mask(self) -> np.ndarray:
        """(L, A_max, R_max) bool: True where the padded grid holds a real voxel."""
        mask = np.zeros(int(np.prod(self.grid_shape)), dtype=bool)
        mask[self.grid_index] = True
        return mask.reshape(self.grid_shape)

    def to_grid(self, showers: Any) -> Any:
        """(N, V) -> (N, L, A_max, R_max), zero-padded. Works on numpy arrays and torch tensors."""
        n = showers.shape[0]
        self._check_voxels(showers.shape[-1])
        if self.is_regular:
            return showers.reshape(n, *self.grid_shape)
        size = int(np.prod(self.grid_shape))
        if isinstance(showers, np.ndarray):
            out = np.zeros((n, size), dtype=showers.dtype)
            out[:, self.grid_index] = showers
        else:  # torch tensor
            import torch

            out = showers.new_zeros((n, size))
            out[:, torch.as_tensor(self.grid_index, device=showers.device)] = showers
        return out.reshape(n, *self.grid_shape)

    def from_grid(self, grid: Any) -> Any:
        """(N, L, A_max, R_max) -> (N, V); exact inverse of :meth:`to_grid` (padding dropped)."""
        n = grid.shape[0]
        if tuple(grid.shape[1:]) != self.grid_shape:
            raise CaloforgeError(f"geometry {self.name}: expected grid shape {self.grid_shape}, got {tuple(grid.shape[1:])}")
        flat = grid.reshape(n, -1)
        if self.is_regular:
            return flat
        if isinstance(flat, np.ndarray):
            return flat[:, self.grid_index]
        import torch

        return flat[:, torch.as_tensor(self.grid_index, device=flat.device)]

    def _check_voxels(self, n_voxels: int) -> None:
        if n_voxels != self.n_voxels:
            raise CaloforgeError(f"geometry {self.name}: expected {self.n_voxels} voxels, got {n_voxels}")

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict:
        """Plain representation stored in checkpoints and output metadata."""
        return {
            "name": self.name,
            "particle": self.particle,
            "layers": [{"r_edges": lay.r_edges.tolist(), "n_alpha": lay.n_alpha} for lay in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "CylindricalReadout":
        try:
            layers = tuple(LayerBinning(np.asarray(d["r_edges"]), int(d["n_alpha"])) for d in data["layers"])
            return cls(str(data["name"]), layers, str(data.get("particle", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise CaloforgeError(f"geometry description is malformed: {exc}") from None

    def same_binning(self, other: "CylindricalReadout") -> bool:
        return self.n_layers == other.n_layers and all(a.same_as(b) for a, b in zip(self.layers, other.layers))

    def __repr__(self) -> str:
        kind = "regular" if self.is_regular else "irregular"
        return f"CylindricalReadout({self.name!r}, {self.n_layers} layers, {self.n_voxels} voxels, {kind})"
