"""Lateral-shape matching: a data term that pulls a one-step student towards Geant4, not its teacher.

Consistency distillation copies the teacher's probability-flow ODE. When that ODE is worse than the
teacher's stochastic sampler (on ds2 its showers are ~20 % too wide in the shower-core layers),
the student inherits the error however well it is distilled. This module adds a distribution
term computed on the student's **one-step samples** against the **real training showers with the
same conditions** (incident and layer energies):

* :class:`LateralShape` turns preprocessed voxels (standardised logits, (N, V)) into lateral
  shape features, differentiably: ``radial``, the energy-weighted mean and RMS radius of every
  layer, mm (the quantities behind CaloChallenge's ``EC_r`` / ``width_r``, without the cell
  threshold); ``alpha``, how unevenly every (layer, radial bin) ring shares its energy among its
  alpha bins;
* :func:`marginal_mmd` is the unbiased squared maximum mean discrepancy (Gretton et al., JMLR 13,
  2012) of every feature's 1-D distribution, Gaussian kernels of a few bandwidths, averaged over
  features of a family (the term sums the families). It is zero in expectation when the
  distributions match, so it does not shrink the spread of the samples (matching batch means would).

Features that do not exist in the real shower of a pair (a layer or ring without energy) are set
to 0 in both samples of the pair.
"""

from __future__ import annotations

import torch

from caloforge.diffusion.model import ShowerDiffusionModel
from caloforge.transforms.base import inverse_logit

__all__ = ["LateralShape", "marginal_mmd", "MMD_BANDWIDTHS", "SHAPE_FAMILIES"]

#: feature families of :class:`LateralShape`
SHAPE_FAMILIES = ("radial", "alpha", "concentration")

#: kernel bandwidths of :func:`marginal_mmd`, in units of each feature's standard deviation
MMD_BANDWIDTHS = (0.1, 0.3, 1.0)


class LateralShape:
    """Shape features of preprocessed showers for one model, in feature families.

    ``"radial"`` (N, 2 L): the energy-weighted mean radius of every layer, then its RMS radius, mm
    (CaloChallenge ``EC_r`` / ``width_r`` without the cell threshold); ``"alpha"`` (N, G): for
    every (layer, radial bin) group of more than one voxel, the coefficient of variation of the
    energy over its alpha bins (how lumpy the shower is around its axis); ``"concentration"``
    (N, L): ``ln sum_v f_v^2`` of the energy fractions ``f_v`` of every layer (minus the log of the
    effective number of voxels that share the layer's energy).

    Input ``z`` (N, V): standardised logits (the model's voxel space). ``masks``: per family (N, F)
    bool, which entries exist (:meth:`masks` of the real showers: layers or groups with energy);
    other entries are 0. :meth:`fit` standardises every feature on real showers.
    """

    def __init__(self, model: ShowerDiffusionModel, families: tuple[str, ...] = ("radial",)) -> None:
        unknown = sorted(set(families) - set(SHAPE_FAMILIES))
        if unknown or not families:
            raise ValueError(f"shape feature families must be a non-empty subset of {list(SHAPE_FAMILIES)}, got {list(families)}")
        pre = model.voxel_pre
        self.pre = pre
        self.families = tuple(families)
        self.r = torch.as_tensor(model.geometry.voxel_r_centre, dtype=torch.float32)
        self.group_size = torch.bincount(pre.voxel_group, minlength=pre.n_groups).float()
        self.alpha_groups = torch.nonzero(self.group_size > 1).flatten()
        self.mean: dict[str, torch.Tensor] = {}
        self.std: dict[str, torch.Tensor] = {}

    def _fractions(self, z: torch.Tensor) -> torch.Tensor:
        """(N, V) unnormalised energy fractions (the voxel transform's inverse logit, >= 0)."""
        pre = self.pre
        return inverse_logit(z * pre.std_[pre.voxel_group] + pre.mean_[pre.voxel_group], pre.delta).clamp_min(0.0)

    def _group_sums(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros((x.shape[0], self.pre.n_groups)).index_add_(1, self.pre.voxel_group, x)

    def masks(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per family (N, F) bool: entries that exist in real showers ``z`` (layers / groups with energy)."""
        x = self._fractions(z)
        has_energy = self.pre.layer_energies(x) > 0.5  # (N, L): a real layer's fractions sum to 1 or 0
        out = {}
        if "radial" in self.families:
            out["radial"] = has_energy.repeat(1, 2)
        if "concentration" in self.families:
            out["concentration"] = has_energy
        if "alpha" in self.families:
            out["alpha"] = self._group_sums(x)[:, self.alpha_groups] > 0
        return out

    def raw(self, z: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per family (N, F) features, not standardised (0 where not in ``masks``)."""
        pre = self.pre
        x = self._fractions(z)
        frac = x / pre.layer_energies(x).clamp_min(1e-12)[:, pre.voxel_layer]
        out = {}
        if "radial" in self.families:
            mean_r = pre.layer_energies(frac * self.r)
            rms = (pre.layer_energies(frac * self.r.square()) - mean_r.square()).clamp_min(1e-6).sqrt()
            out["radial"] = torch.cat([mean_r, rms], dim=1)
        if "alpha" in self.families:
            n = self.group_size[self.alpha_groups]
            mean = self._group_sums(frac)[:, self.alpha_groups] / n
            mean_sq = self._group_sums(frac.square())[:, self.alpha_groups] / n
            out["alpha"] = (mean_sq - mean.square()).clamp_min(1e-12).sqrt() / mean.clamp_min(1e-9)
        if "concentration" in self.families:
            out["concentration"] = pre.layer_energies(frac.square()).clamp_min(1e-12).log()
        return {k: torch.where(masks[k], v, torch.zeros_like(v)) for k, v in out.items()}

    @torch.no_grad()
    def fit(self, z: torch.Tensor, masks: dict[str, torch.Tensor], chunk_size: int = 1024) -> "LateralShape":
        """Per-feature mean and std over the existing entries of real showers ``z`` (N, V)."""
        parts = [self.raw(z[lo:lo + chunk_size], {k: m[lo:lo + chunk_size] for k, m in masks.items()})
                 for lo in range(0, z.shape[0], chunk_size)]
        for family in self.families:
            feats, mask = torch.cat([p[family] for p in parts]), masks[family].float()
            count = mask.sum(0).clamp_min(1.0)
            self.mean[family] = (feats * mask).sum(0) / count
            self.std[family] = (((feats - self.mean[family]).square() * mask).sum(0) / count).sqrt().clamp_min(1e-3)
        return self

    def features(self, z: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per family (N, F) standardised features (0 where not in ``masks``)."""
        out = {}
        for family, values in self.raw(z, masks).items():
            scaled = (values - self.mean[family]) / self.std[family]
            out[family] = torch.where(masks[family], scaled, torch.zeros_like(scaled))
        return out


def marginal_mmd(a: torch.Tensor, b: torch.Tensor, bandwidths: tuple[float, ...] = MMD_BANDWIDTHS) -> torch.Tensor:
    """Unbiased squared MMD of each column's 1-D distribution, averaged over columns (scalar).

    ``a`` (N, F), ``b`` (M, F), N, M >= 2; Gaussian kernels ``exp(-d^2 / (2 h^2))`` summed over
    ``bandwidths`` h. Within-sample sums leave out the diagonal (unbiased estimator).
    """
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("marginal_mmd needs at least 2 samples on each side")

    def kernel_mean(x: torch.Tensor, y: torch.Tensor, same: bool) -> torch.Tensor:
        d2 = (x.unsqueeze(1) - y.unsqueeze(0)).square()  # (N, M, F)
        k = sum(torch.exp(-d2 / (2.0 * h * h)) for h in bandwidths)
        n, m = x.shape[0], y.shape[0]
        if same:
            return (k.sum((0, 1)) - len(bandwidths) * n) / (n * (n - 1))  # exp(0) = 1 on the diagonal
        return k.sum((0, 1)) / (n * m)

    mmd = kernel_mean(a, a, True) + kernel_mean(b, b, True) - 2.0 * kernel_mean(a, b, False)
    return mmd.mean()
