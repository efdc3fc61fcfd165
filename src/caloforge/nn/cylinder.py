"""Convolutions on cylindrical grids: periodic ("circular") padding along alpha, zeros elsewhere.

Alpha-periodic padding makes every convolution commute with a rotation of the shower by whole
alpha bins (CaloDiffusion, Amram & Pedro arXiv:2308.03876, Sec. III). No layer of the networks
here strides along alpha, so the networks are exactly equivariant to rolling alpha.

Padding is written as slicing + concatenation (not ``F.pad(mode='circular')``) so it exports to
ONNX as plain Slice/Concat nodes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["CircularConv2d", "FiLMResBlock", "circular_pad", "group_norm"]


def group_norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    """GroupNorm with the largest group count dividing ``channels`` up to ``groups``."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def circular_pad(x: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    """Pad ``x`` periodically by ``pad`` entries on both sides of dimension ``dim``."""
    if pad == 0:
        return x
    size = x.shape[dim]
    if pad > size:
        raise ValueError(f"circular padding {pad} larger than the dimension ({size})")
    left = x.narrow(dim, size - pad, pad)
    right = x.narrow(dim, 0, pad)
    return torch.cat([left, x, right], dim=dim)


class CircularConv2d(nn.Module):
    """2-D convolution over a ``(N, C, H, W)`` tensor whose spatial dim ``periodic`` (2 or 3) wraps.

    ``kernel``: (kh, kw) odd sizes; ``stride``: (sh, sw), must be 1 along the periodic dimension
    (strides there would break rotation equivariance). The other dimension is zero padded
    ("same" size for stride 1).
    """

    def __init__(
        self, c_in: int, c_out: int, kernel: tuple[int, int], *, periodic: int,
        stride: tuple[int, int] = (1, 1), bias: bool = True,
    ) -> None:
        super().__init__()
        if periodic not in (2, 3):
            raise ValueError("periodic must be 2 (H) or 3 (W)")
        if stride[periodic - 2] != 1:
            raise ValueError("no stride along the periodic dimension")
        if kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
            raise ValueError(f"kernel sizes must be odd, got {kernel}")
        self.periodic = periodic
        self.circ_pad = kernel[periodic - 2] // 2
        padding = [kernel[0] // 2, kernel[1] // 2]
        padding[periodic - 2] = 0
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=tuple(padding), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(circular_pad(x, self.circ_pad, self.periodic))


class FiLMResBlock(nn.Module):
    """Residual block on ``(N, C, H, W)`` with feature-wise affine conditioning (FiLM).

    ``h = conv2(act(norm2(h) * (1 + scale) + shift))`` after ``h = conv1(act(norm1(x)))``; the
    convolution is factorised into a ``(k, 1)`` and a ``(1, k)`` kernel when ``factorised``
    (cheaper on CPU, same receptive field per pair of blocks). ``emb``: (N, emb_dim).
    """

    def __init__(
        self, c_in: int, c_out: int, emb_dim: int, *, periodic: int, kernel: int = 3,
        factorised: bool = True, groups: int = 8,
    ) -> None:
        super().__init__()
        k1, k2 = ((kernel, 1), (1, kernel)) if factorised else ((kernel, kernel), (kernel, kernel))
        self.norm1 = group_norm(c_in, groups)
        self.conv1 = CircularConv2d(c_in, c_out, k1, periodic=periodic)
        self.norm2 = group_norm(c_out, groups)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.conv2 = CircularConv2d(c_out, c_out, k2, periodic=periodic)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()
        nn.init.zeros_(self.conv2.conv.weight)
        nn.init.zeros_(self.conv2.conv.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.act(self.norm2(h) * (1.0 + scale) + shift)
        return self.skip(x) + self.conv2(h)
