"""A lean conditional U-Net for cylindrical calorimeter showers, built to run on a CPU.

Follows CaloDiffusion (Amram & Pedro, arXiv:2308.03876): alpha-periodic padding, the radial and
layer coordinates as extra input channels, conditioning on noise level and incident energy.
Unlike its 3-D U-Net, the work is factorised to be cheap on a CPU:

1. a full-resolution stem: 2-D convolutions over (alpha, r) of each layer (layers in the batch);
2. the radial dimension is folded into channels (``R * c0 -> channels[0]``, a dense map over r),
   leaving a 2-D image over (layer, alpha);
3. a U-Net over (layer, alpha) with factorised ``(3, 1)`` / ``(1, 3)`` convolutions, FiLM
   conditioning, down-sampling along *layers only* (never alpha, so rolling alpha by any number
   of bins commutes with the network exactly) and optional self-attention at the bottleneck;
4. unfolding back to (alpha, r) per layer, joined with the stem features, and a final convolution.

Shapes: ``x`` (N, V) preprocessed voxels in the flat CaloChallenge order, returns (N, V).
Geometries with different binning per layer go through :class:`~caloforge.nn.glam.GLaM`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from caloforge.geometry import CylindricalReadout
from caloforge.nn.cylinder import CircularConv2d, FiLMResBlock, group_norm
from caloforge.nn.embedding import ConditionEmbedding
from caloforge.nn.glam import GLaM, RegularGrid

__all__ = ["CylinderUNet", "UNetConfig"]


@dataclass
class UNetConfig:
    """Architecture of :class:`CylinderUNet` (stored in checkpoints).

    ``stem_channels``: channels per voxel at full resolution; ``channels``: channels of the
    (layer, alpha) U-Net levels (each level halves the layer count); ``blocks``: residual blocks
    per level and direction; ``factorised``: (3,1)+(1,3) instead of 3x3 kernels; ``attention``:
    self-attention heads at the bottleneck (0 = none); ``emb_dim``: conditioning embedding size;
    ``glam_grid``: (A, R) of the GLaM grid for irregular geometries (``None``: automatic).
    """

    stem_channels: int = 8
    channels: list[int] = field(default_factory=lambda: [32, 48, 64])
    blocks: int = 1
    factorised: bool = True
    attention: int = 0
    emb_dim: int = 128
    glam_grid: list[int] | None = None


class _Attention(nn.Module):
    """Multi-head self-attention over all (layer, alpha) positions of ``(N, C, H, W)``."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        return x + out.transpose(1, 2).reshape(n, c, h, w)


class CylinderUNet(nn.Module):
    """Denoiser backbone ``F(x, c_noise, cond) -> (N, V)`` for a cylindrical readout.

    ``geometry``: the readout; ``n_cond``: width of the condition vector (1 = log incident energy
    only); ``config``: :class:`UNetConfig`.
    """

    def __init__(self, geometry: CylindricalReadout, n_cond: int, config: UNetConfig | None = None) -> None:
        super().__init__()
        cfg = config or UNetConfig()
        self.config = cfg
        self.adapter: nn.Module = (
            RegularGrid(geometry) if geometry.is_regular
            else GLaM(geometry, tuple(cfg.glam_grid) if cfg.glam_grid else None)
        )
        n_layers, n_alpha, n_r = self.adapter.grid_shape
        self.grid_shape = (n_layers, n_alpha, n_r)
        c0, chans = cfg.stem_channels, list(cfg.channels)
        emb = cfg.emb_dim
        self.embed = ConditionEmbedding(n_cond, emb)

        # coordinate channels: layer index and radial bin, both scaled to [-1, 1]
        lay = torch.linspace(-1.0, 1.0, n_layers).view(n_layers, 1, 1).expand(n_layers, n_alpha, n_r)
        rad = torch.linspace(-1.0, 1.0, n_r).view(1, 1, n_r).expand(n_layers, n_alpha, n_r)
        self.register_buffer("coords", torch.stack([lay, rad], dim=1).contiguous(), persistent=False)  # (L,2,A,R)

        # (alpha, r) images per layer: alpha is dim 2 (periodic), r dim 3
        if c0 > 0:
            self.stem = CircularConv2d(3, c0, (3, 3), periodic=2)
            self.fold = nn.Conv2d(c0 * n_r, chans[0], 1)
        else:  # fold the raw radial profile (+ layer coordinate) straight into channels
            self.fold = nn.Conv2d(n_r + 1, chans[0], 1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        for i, ch in enumerate(chans):
            c_in = chans[max(i - 1, 0)] if i > 0 else chans[0]
            blocks = nn.ModuleList()
            for b in range(cfg.blocks):
                blocks.append(FiLMResBlock(c_in if b == 0 else ch, ch, emb, periodic=3, factorised=cfg.factorised))
            self.down_blocks.append(blocks)
            if i < len(chans) - 1:
                # (layer, alpha) images: alpha is dim 3 (periodic); stride 2 along layers only
                self.downsamples.append(CircularConv2d(ch, ch, (3, 1), periodic=3, stride=(2, 1)))
        self.mid = FiLMResBlock(chans[-1], chans[-1], emb, periodic=3, factorised=cfg.factorised)
        self.attn = _Attention(chans[-1], cfg.attention) if cfg.attention else None
        self.up_blocks = nn.ModuleList()
        for i in reversed(range(len(chans))):
            ch = chans[i]
            c_in = (chans[i + 1] if i + 1 < len(chans) else chans[-1]) + ch
            blocks = nn.ModuleList()
            for b in range(cfg.blocks):
                blocks.append(FiLMResBlock(c_in if b == 0 else ch, ch, emb, periodic=3, factorised=cfg.factorised))
            self.up_blocks.append(blocks)
        if c0 > 0:
            self.unfold = nn.Conv2d(chans[0], c0 * n_r, 1)
            self.head = nn.Sequential(
                CircularConv2d(2 * c0, c0, (3, 3), periodic=2), nn.SiLU(), nn.Conv2d(c0, 1, 1),
            )
            last = self.head[-1]
        else:
            self.out_norm = group_norm(chans[0])
            self.unfold = nn.Conv2d(chans[0], n_r, 1)
            last = self.unfold
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x`` (N, V), ``c_noise`` (N,), ``cond`` (N, n_cond) -> (N, V)."""
        n = x.shape[0]
        n_layers, n_alpha, n_r = self.grid_shape
        c0 = self.config.stem_channels
        emb = self.embed(c_noise, cond)
        grid = self.adapter.encode(x)  # (N, L, A, R)
        if c0 > 0:
            per_layer = torch.cat(
                [grid.unsqueeze(2), self.coords.unsqueeze(0).expand(n, -1, -1, -1, -1)], dim=2,
            ).reshape(n * n_layers, 3, n_alpha, n_r)
            h0 = F.silu(self.stem(per_layer))  # (N*L, c0, A, R)
            h = h0.reshape(n, n_layers, c0, n_alpha, n_r).permute(0, 2, 4, 1, 3)
            h = h.reshape(n, c0 * n_r, n_layers, n_alpha)
        else:
            layer_coord = self.coords[:, 0, :, 0].reshape(1, 1, n_layers, n_alpha).expand(n, 1, -1, -1)
            h = torch.cat([grid.permute(0, 3, 1, 2), layer_coord], dim=1)  # (N, R + 1, L, A)
        h = self.fold(h)  # (N, C0, L, A)
        skips = []
        for i, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            if i < len(self.downsamples):
                h = self.downsamples[i](h)
        h = self.mid(h, emb)
        if self.attn is not None:
            h = self.attn(h)
        for blocks in self.up_blocks:
            skip = skips.pop()
            if h.shape[2] != skip.shape[2]:
                h = F.interpolate(h, size=(skip.shape[2], skip.shape[3]), mode="nearest")
            h = torch.cat([h, skip], dim=1)
            for block in blocks:
                h = block(h, emb)
        if c0 == 0:
            out = self.unfold(F.silu(self.out_norm(h)))  # (N, R, L, A)
            return self.adapter.decode(out.permute(0, 2, 3, 1))
        h = self.unfold(h)  # (N, c0 * R, L, A)
        h = h.reshape(n, c0, n_r, n_layers, n_alpha).permute(0, 3, 1, 4, 2).reshape(n * n_layers, c0, n_alpha, n_r)
        out = self.head(torch.cat([h, h0], dim=1))  # (N*L, 1, A, R)
        return self.adapter.decode(out.reshape(n, n_layers, n_alpha, n_r))
