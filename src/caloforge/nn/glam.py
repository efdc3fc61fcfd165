"""Maps between the flat voxel vector and the regular (layer, alpha, r) grid the U-Net works on.

* :class:`RegularGrid`: every layer has the same binning (datasets 2 and 3): a reshape.
* :class:`GLaM` (Geometry Latent Mapping, CaloDiffusion, Amram & Pedro arXiv:2308.03876,
  Sec. III.B): for readouts whose layers differ (dataset 1), a learnable linear map per layer from
  its voxels to a common regular (alpha, r) grid, initialised from the overlap of the bins, and a
  decoder initialised as its pseudo-inverse; both are trained with the network. Layers without
  voxels are dropped from the grid.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from caloforge.geometry import CylindricalReadout

__all__ = ["GLaM", "RegularGrid", "overlap_matrix"]


class RegularGrid(nn.Module):
    """Identity reshape ``(N, V) <-> (N, L, A, R)`` for a regular geometry."""

    def __init__(self, geometry: CylindricalReadout) -> None:
        super().__init__()
        if not geometry.is_regular:
            raise ValueError(f"geometry {geometry.name} is irregular: use GLaM")
        self.grid_shape = geometry.grid_shape

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.grid_shape)

    def decode(self, grid: torch.Tensor) -> torch.Tensor:
        return grid.reshape(grid.shape[0], -1)


def _alpha_edges(n_alpha: int) -> np.ndarray:
    return -math.pi + 2.0 * math.pi * np.arange(n_alpha + 1) / n_alpha


def overlap_matrix(r_edges: np.ndarray, n_alpha: int, grid_r_edges: np.ndarray, grid_n_alpha: int) -> np.ndarray:
    """(A_g * R_g, n_alpha * n_r) float64 encoder of one layer, rows in grid (alpha, r) order.

    Entry (j, i) = area(grid bin j intersect voxel i) / area(grid bin j): a grid bin takes the
    area-weighted mean of the voxels that cover it (rows of grid bins outside the layer are zero).
    """
    a_src, a_dst = _alpha_edges(n_alpha), _alpha_edges(grid_n_alpha)
    a_overlap = np.clip(
        np.minimum(a_dst[1:, None], a_src[None, 1:]) - np.maximum(a_dst[:-1, None], a_src[None, :-1]), 0, None,
    )  # (A_g, A)
    r_src, r_dst = np.asarray(r_edges, float), np.asarray(grid_r_edges, float)
    lo = np.maximum(r_dst[:-1, None], r_src[None, :-1])
    hi = np.minimum(r_dst[1:, None], r_src[None, 1:])
    r_overlap = np.where(hi > lo, 0.5 * (hi**2 - lo**2), 0.0)  # (R_g, R) area per radian
    area = np.kron(a_overlap, r_overlap)  # (A_g*R_g, A*R), alpha-major like the voxel order
    grid_area = np.kron(np.diff(a_dst)[:, None], (0.5 * np.diff(r_dst**2))[:, None]).reshape(-1)
    return area / grid_area[:, None]


class GLaM(nn.Module):
    """Learnable per-layer linear maps ``(N, V) <-> (N, L', A, R)`` (L' = layers with voxels).

    ``grid``: (A, R) of the regular grid; default: A = lcm of the alpha bin counts (max if the
    lcm exceeds 64), R edges = union of all layers' radial edges (so every grid bin lies inside
    one voxel of each layer that reaches it).
    """

    def __init__(self, geometry: CylindricalReadout, grid: tuple[int, int] | None = None) -> None:
        super().__init__()
        layers = [i for i, lay in enumerate(geometry.layers) if lay.n_voxels > 0]
        self.layer_index = layers
        self.offsets = [int(geometry.layer_offsets[i]) for i in layers]
        self.sizes = [int(geometry.voxels_per_layer[i]) for i in layers]
        self.n_voxels = geometry.n_voxels
        if grid is None:
            n_alpha = math.lcm(*[geometry.layers[i].n_alpha for i in layers])
            if n_alpha > 64:
                n_alpha = max(geometry.layers[i].n_alpha for i in layers)
            r_edges = np.unique(np.concatenate([geometry.layers[i].r_edges for i in layers]))
        else:
            n_alpha = int(grid[0])
            r_max = max(geometry.layers[i].r_edges[-1] for i in layers)
            r_edges = np.linspace(0.0, r_max, int(grid[1]) + 1)
        self.grid_shape = (len(layers), n_alpha, r_edges.size - 1)
        self.encoders = nn.ParameterList()
        self.decoders = nn.ParameterList()
        for i in layers:
            lay = geometry.layers[i]
            enc = overlap_matrix(lay.r_edges, lay.n_alpha, r_edges, n_alpha)
            self.encoders.append(nn.Parameter(torch.tensor(enc, dtype=torch.float32)))
            self.decoders.append(nn.Parameter(torch.tensor(np.linalg.pinv(enc), dtype=torch.float32)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, V) -> (N, L', A, R)."""
        parts = [x[:, o:o + s] @ enc.T for o, s, enc in zip(self.offsets, self.sizes, self.encoders)]
        return torch.stack(parts, dim=1).reshape(x.shape[0], *self.grid_shape)

    def decode(self, grid: torch.Tensor) -> torch.Tensor:
        """(N, L', A, R) -> (N, V); voxels of layers without bins do not exist, so V is exact."""
        flat = grid.reshape(grid.shape[0], len(self.layer_index), -1)
        parts = [flat[:, k] @ dec.T for k, dec in enumerate(self.decoders)]
        return torch.cat(parts, dim=1)
