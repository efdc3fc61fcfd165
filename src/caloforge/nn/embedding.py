"""Conditioning embeddings: noise level and incident energy (plus optional extra condition vectors).

The noise level enters as ``c_noise = ln(sigma) / 4`` (EDM preconditioning, Karras et al.
arXiv:2206.00364, Table 1) through fixed random Fourier features (Tancik et al. arXiv:2006.10739).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ConditionEmbedding", "FourierFeatures"]


class FourierFeatures(nn.Module):
    """Fixed random Fourier features of a scalar: ``(N,) -> (N, 2 * n_freq)``."""

    def __init__(self, n_freq: int = 16, scale: float = 4.0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1234)  # fixed: the features are part of the architecture
        self.register_buffer("freqs", torch.randn(n_freq, generator=gen) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        arg = 2.0 * math.pi * t.reshape(-1, 1) * self.freqs
        return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)


class ConditionEmbedding(nn.Module):
    """Embed ``c_noise`` (N,) and a condition vector ``cond`` (N, n_cond) into (N, dim).

    ``cond`` holds the normalised log incident energy in column 0 and, for models conditioned on
    layer energies, the preprocessed layer-energy vector after it.
    """

    def __init__(self, n_cond: int, dim: int = 128, n_freq: int = 16) -> None:
        super().__init__()
        self.fourier = FourierFeatures(n_freq)
        self.mlp = nn.Sequential(
            nn.Linear(2 * n_freq + n_cond, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU(),
        )
        self.n_cond = n_cond
        self.dim = dim

    def forward(self, c_noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([self.fourier(c_noise), cond], dim=1))
