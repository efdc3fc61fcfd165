"""Noise levels: sampling schedules (1-D tensors of sigma ending in 0) and training distributions.

All diffusion here uses the variance-exploding form ``x_sigma = x_0 + sigma * n`` of Karras et al.
(EDM, arXiv:2206.00364); a variance-preserving schedule with ``alpha_bar`` maps to it by
``sigma = sqrt((1 - alpha_bar) / alpha_bar)``. The cosine schedule of Nichol & Dhariwal
(arXiv:2102.09672), ``alpha_bar(t) = cos^2(pi t / 2)``, is then ``sigma(t) = tan(pi t / 2)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["SCHEDULES", "cosine_sigmas", "karras_sigmas", "make_sigmas", "sample_training_sigmas"]

SIGMA_MIN = 0.002
SIGMA_MAX = 80.0


def karras_sigmas(steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = 7.0) -> torch.Tensor:
    """(steps + 1,) float64 EDM schedule ``(s_max^(1/rho) + i/(n-1) (s_min^(1/rho) - s_max^(1/rho)))^rho``, then 0
    (arXiv:2206.00364, Eq. 5)."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if steps == 1:
        return torch.tensor([sigma_max, 0.0], dtype=torch.float64)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    inv_max, inv_min = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    sigmas = (inv_max + ramp * (inv_min - inv_max)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def cosine_sigmas(steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX) -> torch.Tensor:
    """(steps + 1,) float64 cosine schedule: ``sigma = tan(pi t / 2)`` at equally spaced ``t`` between
    the times of ``sigma_max`` and ``sigma_min`` (arXiv:2102.09672), then 0."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    t_max, t_min = math.atan(sigma_max), math.atan(sigma_min)
    theta = torch.linspace(t_max, t_min, steps, dtype=torch.float64) if steps > 1 else torch.tensor([t_max], dtype=torch.float64)
    return torch.cat([torch.tan(theta), torch.zeros(1, dtype=torch.float64)])


SCHEDULES = {"karras": karras_sigmas, "cosine": cosine_sigmas}


def make_sigmas(name: str, steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX) -> torch.Tensor:
    """Schedule ``name`` (``karras`` or ``cosine``) with ``steps`` noise levels (plus the final 0)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose from {sorted(SCHEDULES)}")
    return SCHEDULES[name](steps, sigma_min, sigma_max)


def sample_training_sigmas(
    n: int, kind: Literal["lognormal", "cosine"] = "lognormal", *, p_mean: float = -1.2, p_std: float = 1.2,
    sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n,) float32 training noise levels.

    ``lognormal``: ``ln sigma ~ N(p_mean, p_std^2)`` (EDM, arXiv:2206.00364, Table 1);
    ``cosine``: ``t ~ U`` over the cosine schedule's range, ``sigma = tan(pi t / 2)``.
    """
    if kind == "lognormal":
        return torch.exp(p_mean + p_std * torch.randn(n, generator=generator))
    if kind == "cosine":
        u = torch.rand(n, generator=generator)
        t_max, t_min = math.atan(sigma_max), math.atan(sigma_min)
        return torch.tan(t_min + u * (t_max - t_min))
    raise ValueError(f"unknown training sigma distribution {kind!r}")
