"""Preconditioned denoiser ``D(x, sigma, cond)`` shared by the training loss and every sampler.

``D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma), cond)`` with
``F`` a plain backbone (Karras et al., EDM, arXiv:2206.00364, Sec. 5 and Table 1). The three
classical objectives are choices of ``c_skip`` / ``c_out`` with loss weight ``1 / c_out^2``, so
that ``lambda(sigma) |D - x_0|^2 = |F - F_target|^2``:

====================  ===================================  =========================
parametrisation       c_skip, c_out                         F learns
====================  ===================================  =========================
``edm`` (default)     s_d^2/(s^2+s_d^2), s s_d/sqrt(...)    v-like mix (Eq. 7)
``eps``               1, -sigma                             the noise epsilon (DDPM)
``x0``                0, 1                                  the clean sample
====================  ===================================  =========================

``c_in = 1 / sqrt(sigma^2 + s_d^2)`` and ``c_noise = ln(sigma) / 4`` for all three. ``edm`` is the
default: its target has unit variance at every noise level (no blow-up of ``eps`` at large
sigma, nor of ``x0`` at small sigma), which is the property CaloDiffusion's hybrid weighting
approximated (arXiv:2308.03876, Sec. III.C).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["Denoiser", "Parametrisation"]

Parametrisation = Literal["edm", "eps", "x0"]


class Denoiser(nn.Module):
    """Wraps ``backbone(x, c_noise, cond)``; ``sigma_data``: std of the (standardised) data."""

    def __init__(self, backbone: nn.Module, parametrisation: Parametrisation = "edm", sigma_data: float = 1.0) -> None:
        super().__init__()
        if parametrisation not in ("edm", "eps", "x0"):
            raise ValueError(f"unknown parametrisation {parametrisation!r}")
        self.backbone = backbone
        self.parametrisation = parametrisation
        self.sigma_data = float(sigma_data)

    def coefficients(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``c_skip, c_out, c_in, c_noise`` for ``sigma`` (N,)."""
        sd = self.sigma_data
        total = sigma**2 + sd**2
        c_in = total.rsqrt()
        c_noise = sigma.log() / 4.0
        if self.parametrisation == "edm":
            c_skip, c_out = sd**2 / total, sigma * sd * c_in
        elif self.parametrisation == "eps":
            c_skip, c_out = torch.ones_like(sigma), -sigma
        else:
            c_skip, c_out = torch.zeros_like(sigma), torch.ones_like(sigma)
        return c_skip, c_out, c_in, c_noise

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Denoised estimate of ``x_0``: ``x`` (N, D), ``sigma`` (N,) or scalar, ``cond`` (N, C) -> (N, D)."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = self.coefficients(sigma)
        shape = (-1,) + (1,) * (x.ndim - 1)
        out = self.backbone(x * c_in.view(shape), c_noise, cond)
        return c_skip.view(shape) * x + c_out.view(shape) * out

    def loss(self, x0: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-sample loss (N,): ``mean_d lambda(sigma) (D(x0 + sigma n) - x0)^2`` with ``lambda = 1/c_out^2``."""
        shape = (-1,) + (1,) * (x0.ndim - 1)
        denoised = self(x0 + sigma.view(shape) * noise, sigma, cond)
        _, c_out, _, _ = self.coefficients(sigma)
        err = (denoised - x0).square().flatten(1).mean(1)
        return err / c_out.square()
