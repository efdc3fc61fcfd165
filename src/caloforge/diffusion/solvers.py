"""Few-step samplers: DPM-Solver++(2M) and multistep consistency sampling, plus their schedules.

Same conventions as :mod:`caloforge.diffusion.samplers` (variance-exploding form of Karras et
al., arXiv:2206.00364): a sampler is a pure function ``sampler(denoise, x, sigmas, cond,
generator) -> x`` with ``denoise(x, sigma, cond)`` the preconditioned denoiser, ``x`` (N, ...)
start noise already scaled by ``sigmas[0]``, ``sigmas`` (K + 1,) decreasing and ending in 0.

* :func:`sample_dpmpp_2m`: DPM-Solver++(2M) (Lu et al. arXiv:2211.01095, Algorithm 2), the
  second-order multistep solver of the probability-flow ODE in data prediction. It re-uses the
  previous step's denoised estimate instead of a second evaluation, so K steps cost K network
  evaluations (EDM Heun: 2K - 1).
* :func:`sample_dpmpp_2m_tuned`: the same with ``sigma_max`` = 20 instead of 80 (tuned on ds2:
  about 30 % smaller ODE error at 10 steps, see ``docs/fast_sampling.md``).
* :func:`consistency_function`: the consistency-model parametrisation ``f(x, sigma)`` with the
  boundary condition ``f(x, sigma_min) = x`` exactly (Song et al. arXiv:2303.01469, Eq. 5 and
  App. C), written as a transform of any preconditioned denoiser. Distillation
  (:mod:`caloforge.distill`) trains through it and the sampler below samples through it, so the
  two cannot drift apart.
* :func:`sample_consistency`: multistep consistency sampling (arXiv:2303.01469, Algorithm 1):
  ``x <- f(x, sigma_0)``, then for every further level ``x <- f(x + sqrt(s^2 - sigma_min^2) z, s)``.
  K levels cost K network evaluations.
* :func:`consistency_sigmas`: where the consistency sampler re-noises (Karras levels of K + 1
  steps without the last one, which would sit at ``sigma_min`` where ``f`` is the identity).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from caloforge.diffusion.schedules import SIGMA_MAX, SIGMA_MIN, karras_sigmas

__all__ = [
    "TUNED_SIGMA_MAX",
    "consistency_function",
    "consistency_sigmas",
    "sample_consistency",
    "sample_consistency_karras",
    "sample_dpmpp_2m",
    "sample_dpmpp_2m_tuned",
]

DenoiseFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _sigma(value: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])


@torch.no_grad()
def sample_dpmpp_2m(denoise: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, cond: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) in the sigma parametrisation (arXiv:2211.01095, Alg. 2; ``alpha = 1``).

    With ``lambda = -ln sigma`` and step ``h = lambda_next - lambda``: first step and the final step
    to ``sigma = 0`` are first order (``x <- sigma_next/sigma x + (1 - sigma_next/sigma) D``); the
    others extrapolate the denoised estimate linearly in ``lambda`` from the previous one,
    ``D' = (1 + 1/(2r)) D_i - 1/(2r) D_{i-1}`` with ``r = h_{i-1} / h_i``. Deterministic; K
    evaluations for ``sigmas`` of K + 1 entries.
    """
    prev_denoised: torch.Tensor | None = None
    prev_h = 0.0
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = denoise(x, _sigma(sigma, x), cond)
        if sigma_next == 0.0:
            x = denoised  # exact limit of the update for sigma_next -> 0
            break
        h = math.log(sigma / sigma_next)
        if prev_denoised is None:
            estimate = denoised
        else:
            r = prev_h / h
            estimate = (1.0 + 0.5 / r) * denoised - (0.5 / r) * prev_denoised
        ratio = sigma_next / sigma
        x = ratio * x + (1.0 - ratio) * estimate  # = sigma_next/sigma x - expm1(-h) D'
        prev_denoised, prev_h = denoised, h
    return x


#: sigma_max of the tuned DPM-Solver++(2M) schedule. The preprocessing standardises every voxel group
#: to mean 0 and sigma_data = 1, so starting from N(0, 20^2) instead of N(0, 80^2) mis-states the
#: prior by 0.1 % in variance and by (conditional mean) / 20 in mean, which moves a sample by about
#: mean * spread / 20 (<= 0.03 standard deviations here); in exchange the levels EDM spends between 80
#: and 20 go where the denoiser changes: about 30 % less ODE error at 10 steps on ds2
#: (docs/fast_sampling.md, steps table).
TUNED_SIGMA_MAX = 20.0


@torch.no_grad()
def sample_dpmpp_2m_tuned(denoise: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, cond: torch.Tensor,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """:func:`sample_dpmpp_2m` on the Karras schedule (same step count, ``rho`` 7, same ``sigma_min``)
    with ``sigma_max`` lowered to :data:`TUNED_SIGMA_MAX`; the start noise ``x = sigmas[0] z`` is
    rescaled to ``TUNED_SIGMA_MAX z``. Schedules that already start lower are used unchanged."""
    top = float(sigmas[0])
    if top <= TUNED_SIGMA_MAX:
        return sample_dpmpp_2m(denoise, x, sigmas, cond, generator)
    steps = len(sigmas) - 1
    low = float(sigmas[-2]) if steps > 1 else SIGMA_MIN
    tuned = karras_sigmas(steps, min(low, TUNED_SIGMA_MAX), TUNED_SIGMA_MAX)
    return sample_dpmpp_2m(denoise, x * (TUNED_SIGMA_MAX / top), tuned, cond, generator)


def consistency_function(
    denoise: DenoiseFn, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor, *,
    sigma_min: float = SIGMA_MIN, sigma_data: float = 1.0,
) -> torch.Tensor:
    """Consistency function ``f(x, sigma)`` (N, ...) from a preconditioned denoiser ``D``.

    Song et al. (arXiv:2303.01469, App. C) use ``f = c_skip x + c_out F`` with
    ``c_skip = s_d^2 / ((sigma - sigma_min)^2 + s_d^2)`` and
    ``c_out = s_d (sigma - sigma_min) / sqrt(sigma^2 + s_d^2)``. Writing the EDM-normalised network
    output as ``F = (D - c_skip^EDM x) / c_out^EDM`` (arXiv:2206.00364, Table 1) gives, for any
    parametrisation of ``D``::

        f(x, sigma) = c_skip x + (1 - sigma_min / sigma) (D(x, sigma) - s_d^2 / (sigma^2 + s_d^2) x)

    so ``f(x, sigma_min) = x`` exactly, ``f ~ D`` for ``sigma >> sigma_min`` (a student starts as
    its teacher), and nothing is divided by a small number. ``sigma``: (N,) with ``sigma >=
    sigma_min``; ``x`` (N, D); ``cond`` (N, C).
    """
    sigma = _sigma(sigma, x)
    shape = (-1,) + (1,) * (x.ndim - 1)
    s = sigma.view(shape)
    sd2 = sigma_data**2
    c_skip = sd2 / ((s - sigma_min) ** 2 + sd2)
    c_skip_edm = sd2 / (s**2 + sd2)
    return c_skip * x + (1.0 - sigma_min / s) * (denoise(x, sigma, cond) - c_skip_edm * x)


def consistency_sigmas(steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX,
                       rho: float = 7.0) -> torch.Tensor:
    """(steps + 1,) float64 evaluation levels of multistep consistency sampling, ending in 0.

    The Karras schedule of ``steps + 1`` levels (arXiv:2206.00364, Eq. 5) without its last level
    ``sigma_min`` (where ``f`` is the identity): 1 -> ``[80, 0]``, 2 -> ``[80, 2.5, 0]``,
    4 -> ``[80, 17.5, 2.5, 0.17, 0]``.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if steps == 1:
        return torch.tensor([sigma_max, 0.0], dtype=torch.float64)
    levels = karras_sigmas(steps + 1, sigma_min, sigma_max, rho)[:-2]
    return torch.cat([levels, levels.new_zeros(1)])


@torch.no_grad()
def sample_consistency(denoise: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, cond: torch.Tensor,
                       generator: torch.Generator | None = None, *, sigma_min: float = SIGMA_MIN,
                       sigma_data: float | None = None) -> torch.Tensor:
    """Multistep consistency sampling (arXiv:2303.01469, Algorithm 1) at the levels ``sigmas[:-1]``.

    ``x <- f(x, sigmas[0])``; then for each further level ``s``: fresh noise ``z`` from
    ``generator``, ``x <- f(x + sqrt(s^2 - sigma_min^2) z, s)``. ``f``: :func:`consistency_function`
    of ``denoise`` (``sigma_data``: default ``denoise.sigma_data`` if it has one, else 1). Meant for
    distilled students (:mod:`caloforge.distill`); on an undistilled model it is a crude
    denoise/re-noise sampler.
    """
    sd = float(getattr(denoise, "sigma_data", 1.0) if sigma_data is None else sigma_data)
    levels = [float(s) for s in sigmas[:-1]]
    x = consistency_function(denoise, x, torch.tensor(levels[0]), cond, sigma_min=sigma_min, sigma_data=sd)
    for s in levels[1:]:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x + math.sqrt(max(s**2 - sigma_min**2, 0.0)) * noise
        x = consistency_function(denoise, x, torch.tensor(s), cond, sigma_min=sigma_min, sigma_data=sd)
    return x


@torch.no_grad()
def sample_consistency_karras(denoise: DenoiseFn, x: torch.Tensor, sigmas: torch.Tensor, cond: torch.Tensor,
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """Registry form of :func:`sample_consistency`: given a Karras schedule of K levels (as
    :func:`~caloforge.diffusion.sample` builds it), sample at :func:`consistency_sigmas` (K) spanning
    the same range (``sigmas[0]`` down to ``sigmas[-2]``); the boundary of ``f`` stays at
    :data:`SIGMA_MIN`, where distillation puts it."""
    steps = len(sigmas) - 1
    low = float(sigmas[-2]) if steps > 1 else SIGMA_MIN
    levels = consistency_sigmas(steps, max(low, SIGMA_MIN), float(sigmas[0]))
    return sample_consistency(denoise, x, levels, cond, generator)
