"""The complete shower generator: preprocessing + layer-energy diffusion + voxel diffusion.

Two diffusion models, both conditioned on the normalised log incident energy:

* the **layer-energy model** (CaloDiffusion's "LayerDiffusion", Amram & Pedro arXiv:2308.03876)
  samples ``(ln E_total/E_inc, energy fraction of every layer)``; it is a small MLP that trains in
  minutes and alone sets the total and per-layer energies;
* the **voxel model** (cylindrical U-Net) samples the shape of every layer, normalised to unit
  layer energy (``norm="layer"``), optionally conditioned on the layer-energy vector too; its
  output is rescaled layer by layer to the sampled energies.

With ``norm="incident"`` there is no layer model and the voxel model carries all energies.
All fitted constants are buffers, so ``state_dict`` holds the complete model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from caloforge.diffusion.precond import Denoiser, Parametrisation
from caloforge.diffusion.samplers import sample
from caloforge.geometry import CylindricalReadout
from caloforge.nn import CylinderUNet, LayerMLP, LayerMLPConfig, UNetConfig
from caloforge.transforms import EnergyScaler, LayerEnergyPreprocessor, VoxelPreprocessor

__all__ = ["ModelConfig", "ShowerDiffusionModel", "EncodedBatch"]


@dataclass
class ModelConfig:
    """What the model is (stored in checkpoints).

    ``norm``: ``layer`` (layer-energy model + per-layer shapes) or ``incident`` (voxel model only);
    ``condition_on_layers``: the voxel model also sees the layer-energy vector; ``delta``: logit
    offset; ``parametrisation``: ``edm`` | ``eps`` | ``x0`` (see :mod:`caloforge.diffusion.precond`);
    ``sigma_data``: data std after preprocessing (1 after standardisation).
    """

    norm: Literal["layer", "incident"] = "layer"
    condition_on_layers: bool = True
    delta: float = 1e-6
    parametrisation: Literal["edm", "eps", "x0"] = "edm"
    sigma_data: float = 1.0
    unet: UNetConfig = field(default_factory=UNetConfig)
    layer_model: LayerMLPConfig = field(default_factory=LayerMLPConfig)


@dataclass
class EncodedBatch:
    """Preprocessed training data. ``energy_cond`` (N, 1); ``voxels`` (N, V) standardised logits;
    ``layers`` (N, L + 1) standardised layer-energy vector or ``None`` without a layer model."""

    energy_cond: torch.Tensor
    voxels: torch.Tensor
    layers: torch.Tensor | None

    def subset(self, idx: torch.Tensor) -> "EncodedBatch":
        """The rows ``idx`` (index tensor or slice) of every field."""
        return EncodedBatch(self.energy_cond[idx], self.voxels[idx], None if self.layers is None else self.layers[idx])


class ShowerDiffusionModel(nn.Module):
    """Generator for one geometry: ``generate(energies) -> showers``."""

    def __init__(self, geometry: CylindricalReadout, config: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = config or ModelConfig()
        self.config = cfg
        self.geometry = geometry
        self.energy_scaler = EnergyScaler()
        self.voxel_pre = VoxelPreprocessor(geometry, norm=cfg.norm, delta=cfg.delta)
        self.has_layer_model = cfg.norm == "layer"
        n_layer_vec = geometry.n_layers + 1
        if self.has_layer_model:
            self.layer_pre = LayerEnergyPreprocessor(geometry.n_layers, delta=cfg.delta)
            self.layer_denoiser = Denoiser(LayerMLP(n_layer_vec, 1, cfg.layer_model), cfg.parametrisation, cfg.sigma_data)
        self.voxel_cond_dim = 1 + (n_layer_vec if self.has_layer_model and cfg.condition_on_layers else 0)
        self.voxel_denoiser = Denoiser(CylinderUNet(geometry, self.voxel_cond_dim, cfg.unet), cfg.parametrisation,
                                       cfg.sigma_data)

    # ------------------------------------------------------------------ preprocessing
    @torch.no_grad()
    def fit_preprocessing(self, energies: torch.Tensor, showers: torch.Tensor) -> "ShowerDiffusionModel":
        """Fit all transforms on training data: ``energies`` (N, 1) MeV, ``showers`` (N, V) MeV."""
        self.energy_scaler.fit(energies)
        self.voxel_pre.fit(energies, showers)
        if self.has_layer_model:
            self.layer_pre.fit(energies, self.voxel_pre.layer_energies(showers))
        return self

    @torch.no_grad()
    def encode(self, energies: torch.Tensor, showers: torch.Tensor, chunk_size: int = 1024) -> EncodedBatch:
        """Preprocess training data (chunked to bound memory)."""
        parts: list[tuple] = []
        for lo in range(0, showers.shape[0], chunk_size):
            e, s = energies[lo:lo + chunk_size], showers[lo:lo + chunk_size]
            layers = self.layer_pre.transform(e, self.voxel_pre.layer_energies(s)) if self.has_layer_model else None
            parts.append((self.energy_scaler.transform(e), self.voxel_pre.transform(e, s), layers))
        return EncodedBatch(
            torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
            torch.cat([p[2] for p in parts]) if self.has_layer_model else None,
        )

    def voxel_condition(self, energy_cond: torch.Tensor, layers: torch.Tensor | None) -> torch.Tensor:
        """(N, voxel_cond_dim) condition of the voxel model."""
        if self.voxel_cond_dim == 1:
            return energy_cond
        return torch.cat([energy_cond, layers], dim=1)

    # ------------------------------------------------------------------ training
    def voxel_loss(self, batch: EncodedBatch, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-sample voxel-model loss (N,)."""
        return self.voxel_denoiser.loss(batch.voxels, sigma, self.voxel_condition(batch.energy_cond, batch.layers), noise)

    def layer_loss(self, batch: EncodedBatch, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-sample layer-model loss (N,)."""
        return self.layer_denoiser.loss(batch.layers, sigma, batch.energy_cond, noise)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def sample_layers(
        self, energies: torch.Tensor, *, sampler: str = "heun", steps: int = 32, generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(N, L + 1) standardised layer-energy vectors for ``energies`` (N, 1) MeV."""
        cond = self.energy_scaler.transform(energies)
        return sample(sampler, self.layer_denoiser, (energies.shape[0], self.geometry.n_layers + 1), cond, steps,
                      generator=generator)

    @torch.no_grad()
    def generate(
        self, energies: torch.Tensor, *, sampler: str = "heun", steps: int = 16, generator: torch.Generator | None = None,
        layer_sampler: str = "heun", layer_steps: int = 32, threshold: bool = True,
    ) -> torch.Tensor:
        """Showers (N, V) MeV for incident ``energies`` (N, 1) MeV.

        ``sampler``/``steps``: voxel model; ``layer_sampler``/``layer_steps``: layer-energy model
        (cheap); ``threshold``: apply the cell threshold.
        """
        energies = energies.reshape(-1, 1).float()
        cond = self.energy_scaler.transform(energies)
        layers = e_layer = None
        if self.has_layer_model:
            layers = self.sample_layers(energies, sampler=layer_sampler, steps=layer_steps, generator=generator)
            e_layer = self.layer_pre.inverse_transform(layers, energies)
        z = sample(sampler, self.voxel_denoiser, (energies.shape[0], self.geometry.n_voxels),
                   self.voxel_condition(cond, layers), steps, generator=generator)
        return self.voxel_pre.inverse_transform(z, energies, e_layer, threshold=threshold)
