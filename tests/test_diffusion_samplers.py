"""Schedules, preconditioning and samplers, checked on Gaussian data whose optimal denoiser is
known in closed form: for x0 ~ N(mu, s^2), D(x, sigma) = mu + s^2 / (s^2 + sigma^2) (x - mu)."""

import math

import pytest
import torch

from caloforge.diffusion import (
    SAMPLERS,
    Denoiser,
    cosine_sigmas,
    karras_sigmas,
    network_evaluations,
    sample,
    sample_training_sigmas,
)

MU, S = 0.7, 0.5


def exact_denoiser(x, sigma, cond):
    return MU + S**2 / (S**2 + sigma.view(-1, 1) ** 2) * (x - MU)


def test_schedules():
    k = karras_sigmas(10)
    assert k.shape == (11,) and k[0] == 80.0 and math.isclose(float(k[-2]), 0.002, rel_tol=1e-9) and k[-1] == 0
    assert torch.all(k[1:] < k[:-1])
    c = cosine_sigmas(10)
    assert math.isclose(float(c[0]), 80.0, rel_tol=1e-9) and math.isclose(float(c[-2]), 0.002, rel_tol=1e-9)
    # cosine = equally spaced in atan(sigma), i.e. in t of alpha_bar = cos^2(pi t / 2)
    theta = torch.atan(c[:-1])
    assert torch.allclose(theta[1:] - theta[:-1], (theta[1] - theta[0]).expand(9), atol=1e-12)
    s = sample_training_sigmas(20000, "lognormal", generator=torch.Generator().manual_seed(0))
    assert abs(float(s.log().mean()) + 1.2) < 0.03 and abs(float(s.log().std()) - 1.2) < 0.03


@pytest.mark.parametrize("name,steps,tol", [("heun", 24, 0.02), ("ddim", 64, 0.03), ("ddpm", 200, 0.03)])
def test_samplers_recover_gaussian(name, steps, tol):
    gen = torch.Generator().manual_seed(0)
    x = sample(name, exact_denoiser, (20000, 2), torch.zeros(20000, 1), steps, generator=gen)
    assert abs(float(x.mean()) - MU) < tol
    assert abs(float(x.std()) - S) < tol


def test_network_evaluations():
    assert network_evaluations("heun", 10) == 19
    assert network_evaluations("ddim", 10) == network_evaluations("ddpm", 10) == 10
    assert {"ddpm", "ddim", "heun"} <= set(SAMPLERS)


class _Oracle(torch.nn.Module):
    """Backbone returning the exact F for Gaussian data under a given parametrisation."""

    def __init__(self):
        super().__init__()
        self.owner = None

    def forward(self, x_in, c_noise, cond):
        sigma = torch.exp(4 * c_noise).view(-1, 1)
        c_skip, c_out, c_in, _ = self.owner.coefficients(sigma.view(-1))
        x = x_in / c_in.view(-1, 1)
        return (exact_denoiser(x, sigma, cond) - c_skip.view(-1, 1) * x) / c_out.view(-1, 1)


@pytest.mark.parametrize("param", ["edm", "eps", "x0"])
def test_preconditioning_is_consistent(param):
    backbone = _Oracle()
    den = Denoiser(backbone, param)
    backbone.owner = den
    x = torch.randn(8, 3)
    sigma = torch.tensor([0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 20.0, 80.0])
    assert torch.allclose(den(x, sigma, None), exact_denoiser(x, sigma, None), atol=1e-4)
    # loss weight 1 / c_out^2 makes the loss the plain F-regression error of each objective
    x0, noise = torch.randn(8, 3), torch.randn(8, 3)
    zero = Denoiser(lambda a, b, c: torch.zeros_like(a), param)
    c_skip, c_out, _, _ = zero.coefficients(sigma)
    target = (x0 - c_skip.view(-1, 1) * (x0 + sigma.view(-1, 1) * noise)) / c_out.view(-1, 1)
    assert torch.allclose(zero.loss(x0, sigma, None, noise), target.square().mean(1), rtol=1e-4)
    if param == "eps":  # F learns the noise itself
        assert torch.allclose(target, noise, atol=1e-4)
