"""Diffusion: noise schedules, the preconditioned denoiser (shared by loss and samplers), samplers."""

from caloforge.diffusion.model import EncodedBatch, ModelConfig, ShowerDiffusionModel
from caloforge.diffusion.precond import Denoiser, Parametrisation
from caloforge.diffusion.samplers import (
    SAMPLERS,
    SamplerSpec,
    network_evaluations,
    sample,
    sample_ddim,
    sample_ddpm,
    sample_heun,
)
from caloforge.diffusion.schedules import (
    SCHEDULES,
    cosine_sigmas,
    karras_sigmas,
    make_sigmas,
    sample_training_sigmas,
)

__all__ = [
    "Denoiser",
    "EncodedBatch",
    "ModelConfig",
    "Parametrisation",
    "SAMPLERS",
    "SCHEDULES",
    "SamplerSpec",
    "ShowerDiffusionModel",
    "cosine_sigmas",
    "karras_sigmas",
    "make_sigmas",
    "network_evaluations",
    "sample",
    "sample_ddim",
    "sample_ddpm",
    "sample_heun",
    "sample_training_sigmas",
]
