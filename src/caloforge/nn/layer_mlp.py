"""Residual MLP denoiser backbone for the layer-energy vector (the "LayerDiffusion" idea of
CaloDiffusion, Amram & Pedro arXiv:2308.03876): a small diffusion model of
(total energy ratio, energy fraction per layer) conditioned on the incident energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from caloforge.nn.embedding import ConditionEmbedding

__all__ = ["LayerMLP", "LayerMLPConfig"]


@dataclass
class LayerMLPConfig:
    """``hidden``: width; ``blocks``: residual blocks; ``emb_dim``: conditioning embedding size."""

    hidden: int = 256
    blocks: int = 4
    emb_dim: int = 128


class _Block(nn.Module):
    def __init__(self, hidden: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.film = nn.Linear(emb_dim, 2 * hidden)
        self.fc1 = nn.Linear(hidden, 2 * hidden)
        self.fc2 = nn.Linear(2 * hidden, hidden)
        self.act = nn.SiLU()
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb).chunk(2, dim=1)
        return h + self.fc2(self.act(self.fc1(self.norm(h) * (1.0 + scale) + shift)))


class LayerMLP(nn.Module):
    """``F(y, c_noise, cond) -> (N, D)`` for ``y`` (N, D) preprocessed layer-energy vectors."""

    def __init__(self, dim: int, n_cond: int, config: LayerMLPConfig | None = None) -> None:
        super().__init__()
        cfg = config or LayerMLPConfig()
        self.config = cfg
        self.embed = ConditionEmbedding(n_cond, cfg.emb_dim)
        self.inp = nn.Linear(dim, cfg.hidden)
        self.blocks = nn.ModuleList(_Block(cfg.hidden, cfg.emb_dim) for _ in range(cfg.blocks))
        self.out_norm = nn.LayerNorm(cfg.hidden)
        self.out = nn.Linear(cfg.hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, y: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        emb = self.embed(c_noise, cond)
        h = self.inp(y)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(torch.nn.functional.silu(self.out_norm(h)))
