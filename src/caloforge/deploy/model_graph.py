"""The caloforge diffusion model as an exportable fixed-step sampler graph.

:class:`DiffusionSamplerGraph` runs exactly what :meth:`ShowerDiffusionModel.generate` runs
(energy scaling, layer-energy diffusion, voxel diffusion, inverse preprocessing with the cell
threshold), built from the model's public parts and the registered samplers of
:mod:`caloforge.diffusion.samplers`, except that the start noise is an input instead of being
drawn inside. The noise input packs the start noise of each diffusion in the order ``generate``
draws it: ``[layers (L + 1) | voxels (V)]`` (``[voxels (V)]`` for models without a layer model),
so the same noise tensors give the same showers as ``generate`` (see :func:`model_noise`).
Samplers that draw fresh noise at every step (``ddpm``) cannot be exported as a fixed graph; this
is checked by running the graph under two global seeds.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from caloforge.deploy.graph import GraphSpec, SamplerGraph
from caloforge.diffusion import SAMPLERS, ShowerDiffusionModel, make_sigmas
from caloforge.errors import CaloforgeError

__all__ = ["DiffusionSamplerGraph", "build_sampler_graph", "noise_parts"]


def noise_parts(model: ShowerDiffusionModel) -> list[tuple[str, int]]:
    """``[(name, size), ...]`` of the packed noise input in draw order (layer model first)."""
    parts = [("layers", model.geometry.n_layers + 1)] if model.has_layer_model else []
    return parts + [("voxels", model.geometry.n_voxels)]


def _energy_range_mev(model: ShowerDiffusionModel) -> tuple[float, float]:
    """Training energy range estimated from the fitted log-energy scaler: ``exp(mean +- sqrt(3) std)``
    (exact for energies log-uniform over the range, as in the CaloChallenge datasets 2 and 3)."""
    mean, std = float(model.energy_scaler.mean_), float(model.energy_scaler.std_)
    return (math.exp(mean - math.sqrt(3) * std), math.exp(mean + math.sqrt(3) * std))


class DiffusionSamplerGraph(SamplerGraph):
    """``(incident_energy (N, 1) MeV, noise (N, D)) -> showers (N, V) MeV`` for a caloforge model.

    ``sampler``/``steps``: voxel diffusion; ``layer_sampler``/``layer_steps``: layer-energy
    diffusion (ignored without a layer model). Noise levels are fixed buffers (constants in ONNX).
    """

    def __init__(self, model: ShowerDiffusionModel, *, sampler: str, steps: int, layer_sampler: str,
                 layer_steps: int, source: str = "") -> None:
        for name, value in (("sampler", sampler), ("layer sampler", layer_sampler)):
            if value not in SAMPLERS:
                raise CaloforgeError(f"unknown {name} {value!r}; choose from {', '.join(sorted(SAMPLERS))}")
        if steps < 1 or layer_steps < 1:
            raise CaloforgeError(f"steps must be >= 1, got {steps} (layer steps {layer_steps})")
        parts = noise_parts(model)
        extra = {"noise_parts": [{"name": n, "size": s} for n, s in parts], "source": source}
        if model.has_layer_model:
            extra.update(layer_sampler=layer_sampler, layer_steps=layer_steps)
        super().__init__(GraphSpec(model.geometry, tuple(s for _, s in parts), sampler, steps,
                                   _energy_range_mev(model), extra=extra))
        self.model = model.eval()
        self.sampler, self.layer_sampler = sampler, layer_sampler
        self.n_layer_noise = parts[0][1] if model.has_layer_model else 0
        self.register_buffer("sigmas", make_sigmas(SAMPLERS[sampler].schedule, steps), persistent=False)
        self.register_buffer("layer_sigmas", make_sigmas(SAMPLERS[layer_sampler].schedule, layer_steps),
                             persistent=False)
        self._check_deterministic()

    def _check_deterministic(self) -> None:
        """Refuse samplers with randomness besides the start noise (same inputs, two global seeds)."""
        energies = torch.full((1, 1), float(np.sqrt(np.prod(self.spec.energy_range_mev))))
        noise = torch.zeros((1, self.spec.noise_size))
        outputs = []
        with torch.random.fork_rng(), torch.no_grad():
            for seed in (1, 2):
                torch.manual_seed(seed)
                outputs.append(self(energies, noise))
        if not torch.equal(*outputs):
            raise CaloforgeError(
                f"sampler {self.sampler!r} / layer sampler {self.layer_sampler!r}: draws fresh noise at every step, "
                "so it cannot be exported as a fixed graph; choose a deterministic one (e.g. heun or ddim)")

    def forward(self, incident_energy: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        model = self.model
        energies = incident_energy.reshape(-1, 1)
        cond = model.energy_scaler.transform(energies)
        layers = e_layer = None
        if model.has_layer_model:
            x = noise[:, :self.n_layer_noise] * self.layer_sigmas[0].to(noise.dtype)
            layers = SAMPLERS[self.layer_sampler].fn(model.layer_denoiser, x, self.layer_sigmas, cond)
            e_layer = model.layer_pre.inverse_transform(layers, energies)
        x = noise[:, self.n_layer_noise:] * self.sigmas[0].to(noise.dtype)
        z = SAMPLERS[self.sampler].fn(model.voxel_denoiser, x, self.sigmas, model.voxel_condition(cond, layers))
        return model.voxel_pre.inverse_transform(z, energies, e_layer, threshold=True)


def build_sampler_graph(model: str | Path | Any = "default", *, sampler: str | None = None, steps: int | None = None,
                        layer_sampler: str | None = None, layer_steps: int | None = None) -> DiffusionSamplerGraph:
    """Graph of ``model`` (checkpoint path, ``"default"``, a ``LoadedModel`` or a ``ShowerDiffusionModel``).

    Unset sampler options take the sampling the model file recommends (``training["sampling"]``,
    e.g. one consistency step for a distilled model) where it is deterministic, else the defaults
    of :func:`caloforge.generation.generate_showers` (Heun: the graph must not draw noise of its
    own, so a recommended DDPM is replaced by them)."""
    # imported here: caloforge.generation may use the deploy client, and must not import this module back
    from caloforge.generation import LoadedModel, generate_showers, load_model

    defaults = {name: p.default for name, p in inspect.signature(generate_showers).parameters.items()}
    source = str(model) if isinstance(model, (str, Path)) else getattr(model, "source", "in-memory model")
    if isinstance(model, (str, Path)):
        model = load_model(model)
    if isinstance(model, LoadedModel):  # the file's recommendation, where it is exportable (deterministic)
        own = (model.meta.get("training") or {}).get("sampling") or {}
        for sampler_key, steps_key in (("sampler", "steps"), ("layer_sampler", "layer_steps")):
            if own.get(sampler_key) in SAMPLERS and not SAMPLERS[own[sampler_key]].stochastic:
                defaults[sampler_key] = own[sampler_key]
                defaults[steps_key] = own.get(steps_key, defaults[steps_key])
    net = model.model if isinstance(model, LoadedModel) else model
    if not isinstance(net, ShowerDiffusionModel):
        raise CaloforgeError(f"expected a caloforge model or checkpoint, got {type(net).__name__}")
    return DiffusionSamplerGraph(
        net, sampler=sampler or defaults["sampler"], steps=steps or defaults["steps"],
        layer_sampler=layer_sampler or defaults["layer_sampler"], layer_steps=layer_steps or defaults["layer_steps"],
        source=source)
