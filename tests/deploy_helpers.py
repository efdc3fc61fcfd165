"""A tiny, randomly initialised caloforge diffusion model on the ds2 readout, for the deployment tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from caloforge.diffusion import ModelConfig, ShowerDiffusionModel
from caloforge.geometry import get_geometry
from caloforge.nn import LayerMLPConfig, UNetConfig
from caloforge.train.checkpoint import save_model_file

#: sampler baked into the test exports (few steps keep the tests fast)
SAMPLER = {"sampler": "heun", "steps": 2, "layer_sampler": "heun", "layer_steps": 3}


def tiny_model(seed: int = 0) -> ShowerDiffusionModel:
    """Real architecture (U-Net + layer-energy MLP, ~21k weights), preprocessing fitted on 64
    synthetic ds2-shaped showers (1-100 GeV), weights randomly perturbed so every part matters."""
    geometry = get_geometry("ds2")
    config = ModelConfig(unet=UNetConfig(stem_channels=2, channels=[8, 16], emb_dim=16),
                         layer_model=LayerMLPConfig(hidden=32, blocks=1, emb_dim=16))
    torch.manual_seed(seed)
    model = ShowerDiffusionModel(geometry, config)
    rng = np.random.default_rng(seed)
    energies = (1000.0 * 10 ** rng.uniform(0, 2, (64, 1))).astype(np.float32)
    profile = np.exp(-geometry.voxel_r / 2.0 - (geometry.voxel_layer - 12) ** 2 / 100.0)
    showers = energies * profile / profile.sum() * rng.exponential(1.0, (64, geometry.n_voxels))
    showers = (showers * (rng.random(showers.shape) < 0.5)).astype(np.float32)
    model.fit_preprocessing(torch.from_numpy(energies), torch.from_numpy(showers))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    return model.eval()


def tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """Save :func:`tiny_model` as a caloforge model file."""
    return save_model_file(path, tiny_model(seed), {"note": "tiny random model for deployment tests"})
