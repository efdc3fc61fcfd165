"""SDEdit in the latent space of a diffusion model (Meng et al., arXiv:2108.01073).

Instead of starting the reverse process from pure noise at ``sigma_max``, start it from a guide
``y`` (here: a FastSim shower, preprocessed) perturbed to an intermediate noise level
``sigma_0``: ``x = y + sigma_0 n`` (variance-exploding form of Karras et al., arXiv:2206.00364),
then run an existing sampler of :mod:`caloforge.diffusion.samplers` from ``sigma_0`` to 0.
Small ``sigma_0`` keeps the guide (faithful but keeps its flaws), large ``sigma_0`` forgets it
(realistic but no longer FastSim's shower); ``sigma_0 -> 0`` returns the guide unchanged.
"""

from __future__ import annotations

import torch

from caloforge.diffusion.samplers import SAMPLERS, DenoiseFn
from caloforge.diffusion.schedules import SIGMA_MAX, SIGMA_MIN, make_sigmas

__all__ = ["sdedit", "sdedit_sigmas", "start_sigma"]


def start_sigma(t0: float, *, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = 7.0) -> float:
    """Noise level of the schedule fraction ``t0`` in [0, 1] (0: clean data, 1: ``sigma_max``).

    The fraction is measured along the EDM ramp ``sigma^(1/rho)`` (arXiv:2206.00364, Eq. 5), the
    same spacing as the Karras sampling schedule, so ``t0 = 0.5`` is half way through its steps;
    ``t0 = 0`` gives 0 (no noise).
    """
    if not 0.0 <= t0 <= 1.0:
        raise ValueError(f"t0 must be in [0, 1], got {t0}")
    if t0 == 0.0:
        return 0.0
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return float((lo + t0 * (hi - lo)) ** rho)


def sdedit_sigmas(sampler: str, steps: int, sigma0: float, *, sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """(steps + 1,) float64 schedule of ``sampler``'s kind from ``sigma0`` down to 0."""
    if sigma0 <= sigma_min:
        return torch.tensor([sigma0, 0.0], dtype=torch.float64)
    return make_sigmas(SAMPLERS[sampler].schedule, steps, sigma_min, sigma0)


@torch.no_grad()
def sdedit(
    sampler: str, denoise: DenoiseFn, guide: torch.Tensor, cond: torch.Tensor, steps: int, sigma0: float, *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Refine ``guide`` (N, D) latents: noise to ``sigma0``, run ``sampler`` for ``steps`` levels to 0.

    ``denoise(x, sigma, cond)``: preconditioned denoiser; ``cond`` (N, C); ``sigma0 <= 0`` returns
    ``guide`` unchanged (no randomness drawn). Network evaluations as for ``sampler`` with ``steps``.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {sorted(SAMPLERS)}")
    if sigma0 <= 0:
        return guide.clone()
    noise = torch.randn(guide.shape, generator=generator, dtype=guide.dtype)
    x = guide + float(sigma0) * noise
    return SAMPLERS[sampler].fn(denoise, x, sdedit_sigmas(sampler, steps, sigma0), cond, generator)
