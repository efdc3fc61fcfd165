"""Samplers as pure functions over a schedule of noise levels (k-diffusion style).

Every sampler has the signature ``sampler(denoise, x, sigmas, cond, generator) -> x``:

* ``denoise(x, sigma, cond)``: the preconditioned denoiser (:class:`~caloforge.diffusion.Denoiser`);
* ``x``: (N, ...) start noise, already scaled by ``sigmas[0]``;
* ``sigmas``: (K + 1,) decreasing noise levels ending in 0 (see :mod:`caloforge.diffusion.schedules`);
* ``cond``: (N, C) condition; ``generator``: randomness of stochastic samplers (explicit).

All work in the variance-exploding ODE/SDE form of Karras et al. (arXiv:2206.00364), where
``d = (x - D(x)) / sigma`` is the probability-flow ODE derivative ``dx/dsigma``:

* ``ddim``: Euler steps of the ODE; identical to deterministic DDIM (Song et al.
  arXiv:2010.02502) in this parametrisation (arXiv:2206.00364, Sec. 3). K network evaluations.
* ``ddpm``: ancestral sampling (Ho et al. arXiv:2006.11239) written as a step down to
  ``sigma_down`` plus fresh noise ``sigma_up`` (``sigma_down^2 + sigma_up^2 = sigma_next^2``). K evaluations.
* ``heun``: EDM's second-order deterministic sampler (arXiv:2206.00364, Algorithm 1 without
  churn). 2K - 1 evaluations.

New samplers (e.g. DPM-Solver++, consistency sampling) register in :data:`SAMPLERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from caloforge.diffusion.schedules import SIGMA_MAX, SIGMA_MIN, make_sigmas
from caloforge.diffusion.solvers import sample_consistency_karras, sample_dpmpp_2m, sample_dpmpp_2m_tuned

__all__ = ["SAMPLERS", "SamplerSpec", "network_evaluations", "sample", "sample_ddim", "sample_ddpm", "sample_heun"]

DenoiseFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _sigma(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return value.to(x.dtype).expand(x.shape[0])


@torch.no_grad()
def sample_ddim(denoise: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, cond: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Deterministic DDIM = Euler steps of the probability-flow ODE."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        denoised = denoise(x, _sigma(sigma, x), cond)
        x = denoised + (sigma_next / sigma).to(x.dtype) * (x - denoised)
    return x


@torch.no_grad()
def sample_ddpm(denoise: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, cond: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Ancestral (DDPM) sampling: the posterior step, fresh Gaussian noise drawn from ``generator``."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        denoised = denoise(x, _sigma(sigma, x), cond)
        sigma_up = torch.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2).clamp(max=sigma_next)
        sigma_down = torch.sqrt(sigma_next**2 - sigma_up**2)
        x = denoised + (sigma_down / sigma).to(x.dtype) * (x - denoised)
        if sigma_next > 0:
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + sigma_up.to(x.dtype) * noise
    return x


@torch.no_grad()
def sample_heun(denoise: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, cond: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """EDM Heun (2nd order): Euler predictor, trapezoidal corrector except on the last step."""
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - denoise(x, _sigma(sigma, x), cond)) / sigma.to(x.dtype)
        x_next = x + (sigma_next - sigma).to(x.dtype) * d
        if sigma_next > 0:
            d_next = (x_next - denoise(x_next, _sigma(sigma_next, x), cond)) / sigma_next.to(x.dtype)
            x_next = x + (sigma_next - sigma).to(x.dtype) * 0.5 * (d + d_next)
        x = x_next
    return x


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: the function, its default schedule, evaluations per step count and
    whether it draws fresh noise at every step (``stochastic``: not exportable as a fixed graph)."""

    fn: Callable[..., torch.Tensor]
    schedule: str
    evaluations: Callable[[int], int]
    description: str
    stochastic: bool = False


SAMPLERS: dict[str, SamplerSpec] = {
    "ddpm": SamplerSpec(sample_ddpm, "cosine", lambda k: k, "DDPM ancestral (stochastic), cosine schedule",
                        stochastic=True),
    "ddim": SamplerSpec(sample_ddim, "cosine", lambda k: k, "DDIM / Euler ODE (deterministic), cosine schedule"),
    "heun": SamplerSpec(sample_heun, "karras", lambda k: 2 * k - 1, "EDM Heun 2nd order, Karras schedule"),
    # issue 5 (fast sampling), see caloforge.diffusion.solvers
    "dpmpp2m": SamplerSpec(sample_dpmpp_2m, "karras", lambda k: k, "DPM-Solver++(2M) 2nd-order multistep, Karras schedule"),
    "dpmpp2m-s20": SamplerSpec(sample_dpmpp_2m_tuned, "karras", lambda k: k,
                               "DPM-Solver++(2M), Karras schedule with sigma_max 20 (tuned for 8-20 steps)"),
    "consistency": SamplerSpec(sample_consistency_karras, "karras", lambda k: k,
                               "multistep consistency sampling (distilled students, 1-4 steps)"),
}


def network_evaluations(name: str, steps: int) -> int:
    """Denoiser calls per sample for sampler ``name`` with ``steps`` noise levels."""
    return SAMPLERS[name].evaluations(steps)


def sample(
    name: str, denoise: DenoiseFn, shape: tuple[int, ...], cond: torch.Tensor, steps: int, *,
    generator: torch.Generator | None = None, schedule: str | None = None,
    sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw start noise of ``shape`` at ``sigma_max`` and run sampler ``name`` for ``steps`` levels."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from {sorted(SAMPLERS)}")
    spec = SAMPLERS[name]
    sigmas = make_sigmas(schedule or spec.schedule, steps, sigma_min, sigma_max)
    x = torch.randn(shape, generator=generator, dtype=dtype) * float(sigmas[0])
    return spec.fn(denoise, x, sigmas, cond, generator)
