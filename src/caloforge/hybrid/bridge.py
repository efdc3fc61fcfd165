"""Cold diffusion from FastSim to Geant4: a learned Brownian-bridge refiner.

Cold diffusion (Bansal et al., arXiv:2208.09392) replaces Gaussian noising by another degradation
and trains a network to undo it. Here the degradation moves a Geant4 shower towards a FastSim
shower of the same incident energy, in the preprocessed space of a diffusion model
(:mod:`caloforge.transforms`: per-layer shape logits, standardised):

    x_t = (1 - t) z_g4 + t z_fast + sigma_b sqrt(t (1 - t)) eps,    t in [0, 1],  eps ~ N(0, 1)

a Brownian bridge from ``z_g4`` (t = 0) to ``z_fast`` (t = 1). Geant4 and FastSim showers are
not paired event by event, so ``z_fast`` is an independent FastSim shower at the same energy
(independent coupling). A network ``R(x_t, t, cond)`` learns ``E[z_g4 | x_t]`` (MSE). Sampling
starts from a FastSim shower at t = 1 and steps down to t = 0 with the bridge posterior

    x_s = z0_hat + (s / t) (x_t - z0_hat) + sigma_b sqrt(s (t - s) / t) eps

(the ancestral sampler of bridge matching: Liu et al. I2SB arXiv:2302.05872; Shi et al. DSBM
arXiv:2303.16852). The injected noise is the "stochastic component" that keeps the fluctuations
from being averaged away: with independent coupling the learned process is the Markovian
projection of the bridge mixture, whose t = 0 marginal is the Geant4 distribution. Each step is
one network evaluation.

The model carries a whole :class:`~caloforge.diffusion.ShowerDiffusionModel` as ``base``: its
fitted transforms encode and decode showers, and its layer-energy model refines FastSim's layer
energies (:mod:`caloforge.hybrid.refine`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caloforge import __version__
from caloforge.config import from_dict, to_dict
from caloforge.diffusion.model import ShowerDiffusionModel
from caloforge.errors import CaloforgeError, InputFileError
from caloforge.nn.unet import CylinderUNet, UNetConfig
from caloforge.train.checkpoint import build_model, read_checkpoint, save_checkpoint

__all__ = ["BRIDGE_FORMAT", "BridgeConfig", "ShowerBridge", "load_bridge_file", "save_bridge_file"]

BRIDGE_FORMAT = "caloforge-bridge-model"


@dataclass
class BridgeConfig:
    """Architecture of the refiner (stored in its checkpoint).

    ``sigma_bridge``: Brownian-bridge noise scale in the standardised latent space (0 would be a
    deterministic interpolation, which averages fluctuations away); ``unet``: the network, a
    :class:`~caloforge.nn.unet.CylinderUNet` seeing ``x_t``, ``t`` and the base model's voxel
    condition (None: the base model's voxel-network architecture, so training can start from its
    weights).
    """

    sigma_bridge: float = 1.0
    unet: UNetConfig | None = None

    def __post_init__(self) -> None:
        if not self.sigma_bridge >= 0:
            raise CaloforgeError(f"bridge: sigma_bridge must be >= 0, got {self.sigma_bridge}")


class ShowerBridge(nn.Module):
    """FastSim -> Geant4 refiner in the latent space of ``base`` (see module doc)."""

    def __init__(self, base: ShowerDiffusionModel, config: BridgeConfig | None = None) -> None:
        super().__init__()
        config = config or BridgeConfig()
        if config.unet is None:
            config = replace(config, unet=base.config.unet)
        self.config = config
        self.base = base.eval().requires_grad_(False)
        self.net = CylinderUNet(base.geometry, base.voxel_cond_dim, config.unet)

    def init_from_base(self) -> bool:
        """Start from the base model's voxel-network weights if the architectures match (True if done)."""
        if self.config.unet != self.base.config.unet:
            return False
        self.net.load_state_dict(self.base.voxel_denoiser.backbone.state_dict())
        return True

    @property
    def geometry(self):
        return self.base.geometry

    def train(self, mode: bool = True) -> "ShowerBridge":
        super().train(mode)
        self.base.eval()  # the base model is frozen
        return self

    def degrade(self, z_g4: torch.Tensor, z_fast: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t`` (N, V) on the bridge from ``z_g4`` (t = 0) to ``z_fast`` (t = 1); ``t`` (N,)."""
        t = t.reshape(-1, 1)
        return (1 - t) * z_g4 + t * z_fast + self.config.sigma_bridge * torch.sqrt(t * (1 - t)) * noise

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Estimate of the Geant4 latent ``z_g4`` (N, V) from ``x_t`` (N, V), ``t`` (N,), ``cond`` (N, C).

        Residual form: ``x_t + R(...)`` (at small t the state is nearly clean already)."""
        return x_t + self.net(x_t, 2.0 * t - 1.0, cond)

    def loss(self, z_g4: torch.Tensor, z_fast: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
             cond: torch.Tensor) -> torch.Tensor:
        """Per-sample mean squared error of :meth:`predict` against ``z_g4`` (N,)."""
        pred = self.predict(self.degrade(z_g4, z_fast, t, noise), t, cond)
        return ((pred - z_g4) ** 2).mean(dim=1)

    @torch.no_grad()
    def sample(self, z_fast: torch.Tensor, cond: torch.Tensor, steps: int, *,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Refine FastSim latents ``z_fast`` (N, V) in ``steps`` bridge steps (t = 1 -> 0) -> (N, V)."""
        if steps < 1:
            raise CaloforgeError(f"bridge steps must be >= 1, got {steps}")
        times = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
        x = z_fast.clone()
        n = x.shape[0]
        for t, s in zip(times[:-1].tolist(), times[1:].tolist()):
            z0 = self.predict(x, torch.full((n,), t, dtype=x.dtype), cond)
            x = z0 + (s / t) * (x - z0)
            if s > 0 and self.config.sigma_bridge > 0:
                noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
                x = x + self.config.sigma_bridge * (s * (t - s) / t) ** 0.5 * noise
        return x


def save_bridge_file(path: str | Path, bridge: ShowerBridge, training: dict[str, Any]) -> Path:
    """Write a self-contained refiner file (base model + bridge network) atomically."""
    base = bridge.base
    return save_checkpoint({
        "format": BRIDGE_FORMAT,
        "format_version": 1,
        "caloforge_version": __version__,
        "config": to_dict(bridge.config),
        "geometry": base.geometry.to_dict(),
        "base_config": to_dict(base.config),
        "base_state_dict": {k: v.detach().cpu().clone() for k, v in base.state_dict().items()},
        "state_dict": {k: v.detach().cpu().clone() for k, v in bridge.net.state_dict().items()},
        "training": training,
    }, path)


def load_bridge_file(path: str | Path) -> tuple[ShowerBridge, dict[str, Any]]:
    """Load a refiner file: ``(bridge in eval mode, metadata without weights)``; one-line errors."""
    data = read_checkpoint(path, BRIDGE_FORMAT)
    if "state_dict" not in data or "base_state_dict" not in data:
        raise InputFileError(f"{path}: refiner checkpoint lacks weights")
    base = build_model(path, data["base_config"], data["geometry"], data["base_state_dict"])
    try:
        config = from_dict(BridgeConfig, data["config"], where="bridge config")
    except CaloforgeError as exc:
        raise InputFileError(f"{path}: incompatible refiner checkpoint: {exc}") from None
    bridge = ShowerBridge(base, config)
    try:
        bridge.net.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise InputFileError(f"{path}: refiner weights do not match its config ({str(exc).splitlines()[0][:160]})") from None
    meta = {k: v for k, v in data.items() if k not in ("state_dict", "base_state_dict")}
    return bridge.eval(), meta
