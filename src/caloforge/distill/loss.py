"""The consistency-distillation objective (Song et al. arXiv:2303.01469, Algorithm 2).

For data ``x`` and a noise level pair ``t_n < t_{n+1}`` of the discretisation:

1. ``x_{n+1} = x + t_{n+1} z`` with ``z ~ N(0, I)``;
2. the teacher moves it one step along its probability-flow ODE to ``t_n`` with the EDM Heun
   solver (arXiv:2206.00364, Algorithm 1): ``x_hat_n``;
3. loss ``d(f_theta(x_{n+1}, t_{n+1}), f_target(x_hat_n, t_n))`` with ``f`` the consistency
   function (:func:`caloforge.diffusion.solvers.consistency_function`) of the student and of the
   EMA target network, no gradient through the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from caloforge.diffusion.schedules import SIGMA_MAX, SIGMA_MIN, karras_sigmas
from caloforge.diffusion.solvers import consistency_function

__all__ = ["ConsistencyDraw", "distillation_sigmas", "draw", "consistency_loss", "heun_step"]

DenoiseFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def distillation_sigmas(n_levels: int, rho: float = 7.0, sigma_min: float = SIGMA_MIN,
                        sigma_max: float = SIGMA_MAX) -> torch.Tensor:
    """(n_levels,) float32 *increasing* Karras levels ``t_1 = sigma_min < ... < t_N = sigma_max``
    (arXiv:2303.01469, Sec. 3, the EDM discretisation, arXiv:2206.00364 Eq. 5)."""
    return karras_sigmas(n_levels, sigma_min, sigma_max, rho)[:-1].flip(0).float()


@dataclass
class ConsistencyDraw:
    """Random choices of one loss evaluation: ``index`` (N,) long, ``n`` of the pair (t_n, t_{n+1});
    ``noise`` (N, D) standard normal. Fixed draws make validation losses comparable."""

    index: torch.Tensor
    noise: torch.Tensor


def draw(n: int, dim: int, n_levels: int, generator: torch.Generator | None = None) -> ConsistencyDraw:
    """``n ~ U{0, ..., N - 2}`` (the pair ``(t_n, t_{n+1})``) and ``z ~ N(0, I)`` of shape (n, dim)."""
    index = torch.randint(0, n_levels - 1, (n,), generator=generator)
    return ConsistencyDraw(index, torch.randn(n, dim, generator=generator))


@torch.no_grad()
def heun_step(denoise: DenoiseFn, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
              cond: torch.Tensor) -> torch.Tensor:
    """One EDM Heun step of the probability-flow ODE from ``sigma`` to ``sigma_next`` (both (N,),
    > 0): Euler predictor then trapezoidal corrector (arXiv:2206.00364, Algorithm 1)."""
    s, s_next = sigma.view(-1, 1), sigma_next.view(-1, 1)
    d = (x - denoise(x, sigma, cond)) / s
    x_euler = x + (s_next - s) * d
    d_next = (x_euler - denoise(x_euler, sigma_next, cond)) / s_next
    return x + (s_next - s) * 0.5 * (d + d_next)


def consistency_loss(
    student: DenoiseFn, target: DenoiseFn, teacher: DenoiseFn, x0: torch.Tensor, cond: torch.Tensor,
    sigmas: torch.Tensor, choice: ConsistencyDraw, *, loss: str = "l2", huber_c: float = 0.00054,
    sigma_data: float = 1.0,
) -> torch.Tensor:
    """Per-sample consistency-distillation loss (N,).

    ``x0`` (N, D) preprocessed data, ``cond`` (N, C) its condition, ``sigmas`` (N_levels,)
    increasing (:func:`distillation_sigmas`); ``loss``: ``l2`` -> mean squared difference per
    dimension; ``pseudo_huber`` -> ``sqrt(mse + c^2) - c`` (arXiv:2310.14189, Sec. 3.3).
    Gradients flow only through ``student``.
    """
    t_n, t_next = sigmas[choice.index], sigmas[choice.index + 1]
    x_next = x0 + t_next.view(-1, 1) * choice.noise
    x_hat = heun_step(teacher, x_next, t_next, t_n, cond)
    sd = sigma_data
    with torch.no_grad():
        f_target = consistency_function(target, x_hat, t_n, cond, sigma_min=float(sigmas[0]), sigma_data=sd)
    f_online = consistency_function(student, x_next, t_next, cond, sigma_min=float(sigmas[0]), sigma_data=sd)
    mse = (f_online - f_target).square().flatten(1).mean(1)
    if loss == "l2":
        return mse
    if loss == "pseudo_huber":
        return torch.sqrt(mse + huber_c**2) - huber_c
    raise ValueError(f"unknown loss {loss!r}")
