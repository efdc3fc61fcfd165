"""Invertible voxel preprocessing: energy normalisation -> logit -> standardisation.

Forward (CaloDiffusion, Amram & Pedro arXiv:2308.03876, Sec. III.A):

1. ``x = E_voxel / scale`` where ``scale`` is the energy of the voxel's layer (``norm="layer"``,
   used with a layer-energy model, so ``x`` sums to 1 in every layer) or the incident energy
   (``norm="incident"``);
2. ``z = logit(delta + (1 - 2 delta) x)``;
3. ``z' = (z - mean_g) / std_g`` with one mean/std per (layer, radial bin) group ``g`` (shared by
   all alpha bins, so the transform respects the rotation symmetry of the showers).

The inverse undoes the three steps, renormalises every layer to its target energy
(``norm="layer"``) and applies the cell threshold (voxels below it set to 0).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from caloforge.geometry import CylindricalReadout, cell_threshold_mev
from caloforge.transforms.base import FittedModule, inverse_logit, logit

__all__ = ["VoxelPreprocessor"]

Norm = Literal["layer", "incident"]


class VoxelPreprocessor(FittedModule):
    """Fitted voxel transform for one geometry (buffers: ``mean_``, ``std_`` per group).

    ``norm``: ``"layer"`` or ``"incident"``; ``delta``: logit offset; ``threshold_mev``: cell
    threshold applied by :meth:`inverse_transform` (default: the geometry's CaloChallenge one).
    """

    def __init__(
        self, geometry: CylindricalReadout, *, norm: Norm = "layer", delta: float = 1e-6,
        threshold_mev: float | None = None,
    ) -> None:
        super().__init__()
        if norm not in ("layer", "incident"):
            raise ValueError(f"norm must be 'layer' or 'incident', got {norm!r}")
        self.norm = norm
        self.delta = float(delta)
        self.threshold_mev = float(cell_threshold_mev(geometry) if threshold_mev is None else threshold_mev)
        self.n_voxels = geometry.n_voxels
        self.n_layers = geometry.n_layers
        r_max = int(geometry.voxel_r.max()) + 1
        group = geometry.voxel_layer * r_max + geometry.voxel_r
        _, group = np.unique(group, return_inverse=True)
        self.n_groups = int(group.max()) + 1
        self.register_buffer("voxel_group", torch.as_tensor(group, dtype=torch.long), persistent=False)
        self.register_buffer("voxel_layer", torch.as_tensor(geometry.voxel_layer, dtype=torch.long), persistent=False)
        self.register_buffer("mean_", torch.zeros(self.n_groups))
        self.register_buffer("std_", torch.ones(self.n_groups))

    # ------------------------------------------------------------------ helpers
    def _check(self, showers: torch.Tensor) -> None:
        if showers.ndim != 2 or showers.shape[1] != self.n_voxels:
            raise ValueError(f"expected (N, {self.n_voxels}) voxels, got {tuple(showers.shape)}")

    def layer_energies(self, showers: torch.Tensor) -> torch.Tensor:
        """(N, V) MeV -> (N, L) layer energies, MeV."""
        out = showers.new_zeros((showers.shape[0], self.n_layers))
        return out.index_add_(1, self.voxel_layer, showers)

    def _scale(self, showers_or_none: torch.Tensor | None, energies: torch.Tensor, layer_energies: torch.Tensor | None):
        """Per-voxel normalisation (N, V)."""
        if self.norm == "incident":
            return energies.reshape(-1, 1).expand(-1, self.n_voxels)
        if layer_energies is None:
            layer_energies = self.layer_energies(showers_or_none)
        return layer_energies[:, self.voxel_layer]

    def _normalised(self, showers: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        return torch.where(scale > 0, showers / safe, torch.zeros_like(showers)).clamp(0.0, 1.0)

    # ------------------------------------------------------------------ estimator API
    @torch.no_grad()
    def fit(self, energies: torch.Tensor, showers: torch.Tensor, chunk_size: int = 2048) -> "VoxelPreprocessor":
        """Fit group means/stds on ``energies`` (N, 1) MeV and ``showers`` (N, V) MeV; returns self."""
        self._check(showers)
        total = torch.zeros(self.n_groups, dtype=torch.float64)
        total_sq = torch.zeros(self.n_groups, dtype=torch.float64)
        count = torch.bincount(self.voxel_group, minlength=self.n_groups).double() * showers.shape[0]
        for lo in range(0, showers.shape[0], chunk_size):
            s = showers[lo:lo + chunk_size].double()
            e = energies[lo:lo + chunk_size].double()
            z = logit(self._normalised(s, self._scale(s, e, None)), self.delta)
            total.index_add_(0, self.voxel_group, z.sum(0))
            total_sq.index_add_(0, self.voxel_group, (z * z).sum(0))
        mean = total / count
        std = (total_sq / count - mean**2).clamp_min(0).sqrt().clamp_min(1e-3)
        self.mean_.copy_(mean.float())
        self.std_.copy_(std.float())
        self._mark_fitted()
        return self

    def transform(
        self, energies: torch.Tensor, showers: torch.Tensor, layer_energies: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``showers`` (N, V) MeV, ``energies`` (N, 1) MeV -> (N, V) standardised logits."""
        self.check_fitted()
        self._check(showers)
        z = logit(self._normalised(showers, self._scale(showers, energies, layer_energies)), self.delta)
        return (z - self.mean_[self.voxel_group]) / self.std_[self.voxel_group]

    def inverse_transform(
        self, z: torch.Tensor, energies: torch.Tensor, layer_energies: torch.Tensor | None = None,
        *, threshold: bool = True,
    ) -> torch.Tensor:
        """(N, V) standardised logits -> (N, V) MeV.

        ``norm="layer"`` needs ``layer_energies`` (N, L) MeV (e.g. from the layer-energy model):
        each layer's fractions are renormalised to sum to 1 and scaled to its energy.
        ``threshold``: zero voxels below ``threshold_mev``.
        """
        self.check_fitted()
        self._check(z)
        x = inverse_logit(z * self.std_[self.voxel_group] + self.mean_[self.voxel_group], self.delta)
        if self.norm == "incident":
            showers = x * energies.reshape(-1, 1)
        else:
            if layer_energies is None:
                raise ValueError("norm='layer' needs the layer energies (N, L) to invert")
            sums = self.layer_energies(x)
            factor = torch.where(sums > 0, layer_energies / torch.where(sums > 0, sums, torch.ones_like(sums)),
                                 torch.zeros_like(sums))
            showers = x * factor[:, self.voxel_layer]
        if threshold and self.threshold_mev > 0:
            showers = torch.where(showers < self.threshold_mev, torch.zeros_like(showers), showers)
        return showers
