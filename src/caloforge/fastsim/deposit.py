"""Map energy spots (layer, radius, azimuth) to voxel indices of any cylindrical readout.

Works for regular readouts (ds2, ds3: a multiplication gives the radial bin, no per-spot layer
needed) and irregular ones (dataset 1: per-layer radial edges and alpha bin counts, layers without
voxels) through one ``searchsorted`` over the concatenated per-layer edges. Spots beyond a layer's
last radial edge or in layers without voxels get index -1 (not recorded), as in the CaloChallenge
voxelisation.
"""

from __future__ import annotations

import numpy as np

from caloforge.geometry import CylindricalReadout


class VoxelLookup:
    """Vectorised spot -> voxel mapping for ``geometry``.

    ``uniform``: True when every layer has the same ``n_alpha`` and equal radial bins starting at
    0 (then :meth:`local_index` ignores the layer). ``fast_path=False`` forces the general path
    (both give identical indices).
    """

    def __init__(self, geometry: CylindricalReadout, fast_path: bool = True) -> None:
        self.geometry = geometry
        layers = geometry.layers
        self.n_layers = len(layers)
        self.n_r = np.array([lay.n_r for lay in layers], dtype=np.int64)
        self.n_alpha = np.array([lay.n_alpha for lay in layers], dtype=np.int64)
        self.layer_offset = geometry.layer_offsets[:-1].astype(np.int64)
        self.r_min = np.array([lay.r_edges[0] for lay in layers], dtype=np.float32)
        # a layer without voxels accepts no radius
        self.r_max = np.array([lay.r_edges[-1] if lay.n_r > 0 else -np.inf for lay in layers], dtype=np.float32)
        first = layers[0].r_edges
        steps = np.diff(first)
        self.uniform = bool(
            fast_path and geometry.is_regular and first[0] == 0.0 and steps.size > 0
            and np.allclose(steps, steps[0], rtol=0, atol=1e-9 * first[-1])
        )
        self.bin_width = float(steps[0]) if self.uniform else 0.0
        self._stride = 2.0 * float(max(np.max(lay.r_edges) for lay in layers)) + 1.0
        with_voxels = [(i, lay) for i, lay in enumerate(layers) if lay.n_r > 0]
        self._edges = np.concatenate([i * self._stride + lay.r_edges[:-1] for i, lay in with_voxels])
        self._rbin = np.concatenate([np.arange(lay.n_r, dtype=np.int64) for _, lay in with_voxels])

    def local_index(self, r_mm: np.ndarray, u_alpha: np.ndarray, layer: np.ndarray | None = None) -> np.ndarray:
        """Voxel index within its layer (``alpha_bin * n_r + r_bin``), -1 where not recorded.

        ``r_mm``: (S,) float32 radius in mm; ``u_alpha``: (S,) float32 uniform in [0, 1), the azimuth
        as a fraction of a turn (alpha bin = floor(u * n_alpha): the CaloChallenge bin of a uniform
        azimuth); ``layer``: (S,) int readout layer of each spot, needed unless :attr:`uniform`.
        """
        r = np.asarray(r_mm)
        if self.uniform:
            n_alpha = int(self.n_alpha[0])
            a_bin = np.minimum((np.asarray(u_alpha, dtype=np.float64) * n_alpha).astype(np.int32), n_alpha - 1)
            return self.uniform_local_index(r, a_bin)
        if layer is None:
            raise ValueError("layer is required for a non-uniform readout")
        lay = np.asarray(layer, dtype=np.int64)
        keep = (r >= self.r_min[lay]) & (r < self.r_max[lay])
        n_alpha = self.n_alpha[lay]
        a_bin = np.minimum((u_alpha * n_alpha).astype(np.int64), n_alpha - 1)
        pos = np.searchsorted(self._edges, lay * self._stride + r.astype(np.float64), side="right") - 1
        r_bin = self._rbin[np.clip(pos, 0, self._rbin.size - 1)]
        return np.where(keep, a_bin * self.n_r[lay] + r_bin, -1)

    def uniform_local_index(self, r_mm: np.ndarray, alpha_bin: np.ndarray) -> np.ndarray:
        """:meth:`local_index` of a :attr:`uniform` readout from integer ``alpha_bin`` (S,) in
        [0, n_alpha) (e.g. drawn with ``Generator.integers``); (S,) int32, -1 where not recorded.
        Works in place on ``alpha_bin`` (int32) to save memory passes."""
        n_r = int(self.n_r[0])
        r_bin = (np.asarray(r_mm, dtype=np.float32) * np.float32(1.0 / self.bin_width)).astype(np.int32)
        local = np.asarray(alpha_bin, dtype=np.int32)
        local *= n_r
        local += r_bin
        local[r_bin >= n_r] = -1  # beyond the last radial edge (float rounding at the edge included)
        return local

    def voxel_index(self, layer: np.ndarray, r_mm: np.ndarray, u_alpha: np.ndarray) -> np.ndarray:
        """Flat voxel index of spots in readout ``layer`` (values outside [0, L) give -1)."""
        layer = np.asarray(layer, dtype=np.int64)
        inside = (layer >= 0) & (layer < self.n_layers)
        lay = np.where(inside, layer, 0)
        local = self.local_index(r_mm, u_alpha, lay)
        return np.where(inside & (local >= 0), self.layer_offset[lay] + local, -1)
