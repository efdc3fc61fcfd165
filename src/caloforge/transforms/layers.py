"""Invertible transforms of the conditions: incident energy and the layer-energy vector.

* :class:`EnergyScaler`: ``c = (ln E_inc - mean) / std`` (the normalised log incident energy all
  models are conditioned on).
* :class:`LayerEnergyPreprocessor`: the vector modelled by the layer-energy model (the
  "LayerDiffusion" idea of CaloDiffusion, arXiv:2308.03876): ``y_0 = ln(E_total / E_inc)`` and
  ``y_l = logit(delta + (1 - 2 delta) E_l / E_total)`` for every layer ``l``, each standardised.
  The inverse clips fractions to [0, 1] and renormalises them to sum to 1.
"""

from __future__ import annotations

import torch

from caloforge.transforms.base import FittedModule, inverse_logit, logit

__all__ = ["EnergyScaler", "LayerEnergyPreprocessor"]


class EnergyScaler(FittedModule):
    """``energies`` (N, 1) MeV <-> (N, 1) normalised log energy."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean_", torch.zeros(()))
        self.register_buffer("std_", torch.ones(()))

    @torch.no_grad()
    def fit(self, energies: torch.Tensor) -> "EnergyScaler":
        log_e = torch.log(energies.double().reshape(-1))
        self.mean_.copy_(log_e.mean().float())
        self.std_.copy_(log_e.std(unbiased=False).clamp_min(1e-3).float())
        self._mark_fitted()
        return self

    def transform(self, energies: torch.Tensor) -> torch.Tensor:
        self.check_fitted()
        return (torch.log(energies.reshape(-1, 1)) - self.mean_) / self.std_

    def inverse_transform(self, c: torch.Tensor) -> torch.Tensor:
        self.check_fitted()
        return torch.exp(c * self.std_ + self.mean_)


class LayerEnergyPreprocessor(FittedModule):
    """(E_inc (N, 1), layer energies (N, L), MeV) <-> (N, L + 1) standardised vector."""

    def __init__(self, n_layers: int, *, delta: float = 1e-6) -> None:
        super().__init__()
        self.n_layers = int(n_layers)
        self.delta = float(delta)
        self.register_buffer("mean_", torch.zeros(self.n_layers + 1))
        self.register_buffer("std_", torch.ones(self.n_layers + 1))

    @property
    def dim(self) -> int:
        return self.n_layers + 1

    def _raw(self, energies: torch.Tensor, layer_energies: torch.Tensor) -> torch.Tensor:
        if layer_energies.ndim != 2 or layer_energies.shape[1] != self.n_layers:
            raise ValueError(f"expected (N, {self.n_layers}) layer energies, got {tuple(layer_energies.shape)}")
        total = layer_energies.sum(1, keepdim=True)
        safe = total.clamp_min(1e-12)
        ratio = torch.log(safe / energies.reshape(-1, 1))
        frac = (layer_energies / safe).clamp(0.0, 1.0)
        return torch.cat([ratio, logit(frac, self.delta)], dim=1)

    @torch.no_grad()
    def fit(self, energies: torch.Tensor, layer_energies: torch.Tensor) -> "LayerEnergyPreprocessor":
        raw = self._raw(energies.double(), layer_energies.double())
        self.mean_.copy_(raw.mean(0).float())
        self.std_.copy_(raw.std(0, unbiased=False).clamp_min(1e-3).float())
        self._mark_fitted()
        return self

    def transform(self, energies: torch.Tensor, layer_energies: torch.Tensor) -> torch.Tensor:
        """-> (N, L + 1) standardised (log energy ratio, layer-fraction logits)."""
        self.check_fitted()
        return (self._raw(energies, layer_energies) - self.mean_) / self.std_

    def inverse_transform(self, y: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        """(N, L + 1) -> (N, L) layer energies, MeV (fractions renormalised to sum to 1)."""
        self.check_fitted()
        raw = y * self.std_ + self.mean_
        total = torch.exp(raw[:, :1]) * energies.reshape(-1, 1)
        frac = inverse_logit(raw[:, 1:], self.delta)
        norm = frac.sum(1, keepdim=True)
        frac = torch.where(norm > 0, frac / norm.clamp_min(1e-30), torch.zeros_like(frac))
        return frac * total
