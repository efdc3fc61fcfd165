"""Hybrid simulation: FastSim showers refined by a trained diffusion model (SDEdit, arXiv:2108.01073)
or by a cold-diffusion refiner trained for it (:mod:`caloforge.hybrid.bridge`).

Pipeline per batch (incident energies ``E`` (n, 1) MeV kept exactly as given):

1. encode the FastSim shower with the model's own fitted transforms
   (:mod:`caloforge.transforms`): layer-energy vector ``y`` (N, L + 1) and per-layer shape
   logits ``z`` (N, V);
2. layer energies, by ``layers``: ``"refine"`` (default) SDEdit of ``y`` with the layer-energy
   model from the same ``sigma0`` (cheap, fixes FastSim's layer-energy fluctuations),
   ``"fastsim"`` (keep FastSim's layer energies exactly) or ``"model"`` (fresh draw from the
   layer-energy model, ignoring FastSim's);
3. voxels: SDEdit of ``z`` with the voxel model from ``sigma0``, conditioned on ``E`` (and the
   layer vector); with a refiner model instead its Brownian bridge from FastSim (t = 1) to
   Geant4 (t = 0) in ``steps`` steps (``sigma0`` then only sets the layer-energy refinement);
4. invert the preprocessing (cell threshold applied).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from caloforge.config import save_config
from caloforge.diffusion.model import ShowerDiffusionModel
from caloforge.diffusion.samplers import SAMPLERS, network_evaluations
from caloforge.errors import CaloforgeError, InputFileError
from caloforge.generation.models import BUNDLED_MODELS, LoadedModel, load_model
from caloforge.distill.loop import is_distilled
from caloforge.hybrid.bridge import BRIDGE_FORMAT, ShowerBridge, load_bridge_file
from caloforge.hybrid.sdedit import sdedit, start_sigma
from caloforge.io import ShowerWriter, check_output_path, file_info, iter_showers

__all__ = ["LAYER_MODES", "RefineResult", "load_refiner", "refine_batch", "refine_file", "refine_showers",
           "resolve_sigma0"]

LayerMode = Literal["refine", "fastsim", "model"]
LAYER_MODES = ("refine", "fastsim", "model")


def resolve_sigma0(t0: float | None = None, sigma0: float | None = None) -> float:
    """Start noise level from exactly one of ``t0`` (schedule fraction in [0, 1], see
    :func:`~caloforge.hybrid.sdedit.start_sigma`) and ``sigma0`` (>= 0)."""
    if (t0 is None) == (sigma0 is None):
        raise CaloforgeError("give exactly one of t0 (fraction of the schedule) and sigma0 (noise level)")
    if sigma0 is not None:
        if not (np.isfinite(sigma0) and sigma0 >= 0):
            raise CaloforgeError(f"sigma0 must be finite and >= 0, got {sigma0}")
        return float(sigma0)
    if not 0.0 <= float(t0) <= 1.0:
        raise CaloforgeError(f"t0 must be in [0, 1] (fraction of the noise schedule), got {t0}")
    return start_sigma(float(t0))


def _check(sampler: str, steps: int, batch_size: int, layers: str) -> None:
    if sampler not in SAMPLERS:
        raise CaloforgeError(f"unknown sampler {sampler!r}; choose from {', '.join(sorted(SAMPLERS))}")
    if steps < 1 or batch_size < 1:
        raise CaloforgeError(f"steps and batch size must be >= 1, got {steps} and {batch_size}")
    if layers not in LAYER_MODES:
        raise CaloforgeError(f"unknown layer mode {layers!r}; choose from {', '.join(LAYER_MODES)}")


def _generator(seed: int, index: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


@torch.no_grad()
def refine_batch(
    net: ShowerDiffusionModel, energies: torch.Tensor, showers: torch.Tensor, *, sigma0: float, steps: int,
    sampler: str = "dpmpp2m", layers: LayerMode = "refine", layer_steps: int = 8,
    generator: torch.Generator | None = None, bridge: ShowerBridge | None = None,
) -> torch.Tensor:
    """Refine FastSim ``showers`` (n, V) MeV at incident ``energies`` (n, 1) MeV -> (n, V) MeV.

    ``net``: the diffusion model (its transforms, layer model and, without ``bridge``, its voxel
    model for SDEdit); ``bridge``: a cold-diffusion refiner over ``net`` for the voxels."""
    energies = energies.reshape(-1, 1).float()
    showers = showers.float()
    cond = net.energy_scaler.transform(energies)
    y = e_layer = None
    if net.has_layer_model:
        e_fast = net.voxel_pre.layer_energies(showers)
        if layers == "fastsim":
            y, e_layer = net.layer_pre.transform(energies, e_fast), e_fast
        elif layers == "refine":
            y = sdedit(sampler, net.layer_denoiser, net.layer_pre.transform(energies, e_fast), cond, layer_steps,
                       sigma0, generator=generator)
            e_layer = net.layer_pre.inverse_transform(y, energies)
        else:
            y = net.sample_layers(energies, sampler=sampler, steps=layer_steps, generator=generator)
            e_layer = net.layer_pre.inverse_transform(y, energies)
    z_fast, voxel_cond = net.voxel_pre.transform(energies, showers), net.voxel_condition(cond, y)
    if bridge is not None:
        z = bridge.sample(z_fast, voxel_cond, steps, generator=generator)
    else:
        z = sdedit(sampler, net.voxel_denoiser, z_fast, voxel_cond, steps, sigma0, generator=generator)
    return net.voxel_pre.inverse_transform(z, energies, e_layer)


def refine_showers(
    model: ShowerDiffusionModel | LoadedModel | ShowerBridge, energies_mev: np.ndarray, fastsim_showers: np.ndarray, *,
    sigma0: float, steps: int = 4, sampler: str = "dpmpp2m", layers: LayerMode = "refine", layer_steps: int = 8,
    batch_size: int = 100, seed: int = 0, first_index: int = 0, progress: bool = False,
) -> np.ndarray:
    """Refined showers (N, V) float32 MeV from FastSim ``fastsim_showers`` (N, V) MeV at incident
    ``energies_mev`` (N,) or (N, 1) MeV.

    ``sigma0``: SDEdit start noise (:func:`resolve_sigma0`; 0 returns the FastSim showers through the
    preprocessing round trip); ``steps``: noise levels of ``sampler`` from ``sigma0`` to 0;
    ``layers``/``layer_steps``: where layer energies come from (module docstring). With a
    :class:`ShowerBridge` ``model`` the voxels follow its bridge in ``steps`` steps (``sampler``
    then only drives the layer refinement). Each batch has its own random stream seeded by
    ``(seed, first_index + position)``, so chunked calls equal one call.
    """
    bridge = model if isinstance(model, ShowerBridge) else None
    net = bridge.base if bridge is not None else model.model if isinstance(model, LoadedModel) else model
    _check(sampler, steps, batch_size, layers)
    energies = np.asarray(energies_mev, dtype=np.float32).reshape(-1, 1)
    showers = np.asarray(fastsim_showers, dtype=np.float32)
    if showers.ndim != 2 or showers.shape != (energies.shape[0], net.geometry.n_voxels):
        raise CaloforgeError(f"FastSim showers have shape {showers.shape}, expected ({energies.shape[0]}, "
                             f"{net.geometry.n_voxels}) for geometry {net.geometry.name}")
    if energies.size and not (np.all(np.isfinite(energies)) and np.all(energies > 0)):
        raise CaloforgeError("incident energies must be finite and > 0 MeV")
    out = np.empty_like(showers)
    net.eval()
    with tqdm(total=len(energies), disable=not progress, desc="refine", unit="shower") as bar:
        for lo in range(0, len(energies), batch_size):
            e = torch.from_numpy(energies[lo:lo + batch_size])
            s = torch.from_numpy(showers[lo:lo + batch_size])
            gen = _generator(seed, first_index + lo)
            out[lo:lo + len(e)] = refine_batch(net, e, s, sigma0=sigma0, steps=steps, sampler=sampler, layers=layers,
                                               layer_steps=layer_steps, generator=gen, bridge=bridge).numpy()
            bar.update(len(e))
    return out


@dataclass
class RefineResult:
    """``path``: written file; ``config_path``: resolved options (YAML); ``n_showers``; ``wall_s``
    (FastSim + refinement); ``showers_per_s``."""

    path: Path
    config_path: Path
    n_showers: int
    wall_s: float
    showers_per_s: float


def _fastsim_chunks(net: ShowerDiffusionModel, energy: str, n: int, seed: int, particle: str,
                    chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    from caloforge.fastsim import FastSim, get_detector, resolve_params
    from caloforge.generation import energies_from_spec

    detector = get_detector(net.geometry.name)
    sim = FastSim(detector, resolve_params(None, detector, particle))
    energies = energies_from_spec(energy, n, seed)
    for lo in range(0, n, chunk):
        e = energies[lo:lo + chunk]
        yield e.reshape(-1, 1), sim.sample(e, seed=int(np.random.SeedSequence([int(seed), lo, 7]).generate_state(1)[0]))


def load_refiner(model: str | Path) -> tuple[LoadedModel | ShowerBridge, str, dict]:
    """A diffusion model (``ds2-full`` or a ``caloforge train`` file: SDEdit) or a refiner file from
    ``caloforge train-refiner`` (bridge): ``(model, method, checkpoint metadata)``. A distilled
    consistency student (e.g. the bundled default) is refused: SDEdit needs a diffusion model's
    denoiser at every noise level of its sampler."""
    if str(model) not in ("default", *BUNDLED_MODELS) and Path(model).is_file():
        try:
            fmt = torch.load(model, map_location="cpu", weights_only=True).get("format")
        except Exception:  # load_model below gives the one-line error
            fmt = None
        if fmt == BRIDGE_FORMAT:
            bridge, meta = load_bridge_file(model)
            return bridge, "bridge", meta
    loaded = load_model(model)
    if is_distilled(loaded.meta):
        raise CaloforgeError(f"{model}: is a distilled consistency student; SDEdit refinement needs a diffusion model "
                             "(e.g. --model ds2-full) or a refiner from `caloforge train-refiner`")
    return loaded, "sdedit", loaded.meta


def refine_file(
    out: str | Path, model: str | Path = "ds2-full", *, fastsim_from: str | Path | None = None,
    energy: str | None = None, n: int | None = None, t0: float | None = None, sigma0: float | None = None,
    steps: int = 4, sampler: str = "dpmpp2m", layers: LayerMode = "refine", layer_steps: int = 8,
    batch_size: int = 100, seed: int = 0, particle: str = "e-", overwrite: bool = False, progress: bool = True,
) -> RefineResult:
    """Refine FastSim showers into the CaloChallenge file ``out`` (atomic; ``out.yaml`` beside it).

    Input: ``fastsim_from`` (a CaloChallenge file of FastSim showers, its first ``n`` if given) or
    ``energy`` (GeV spec ``E`` or ``EMIN:EMAX``) + ``n``: FastSim is run here (``particle``).
    Incident energies of the output equal those of the input.
    """
    out = check_output_path(out, overwrite)
    _check(sampler, steps, batch_size, layers)
    s0 = resolve_sigma0(t0, sigma0)
    if (fastsim_from is None) == (energy is None):
        raise CaloforgeError("give exactly one of --fastsim-from and --energy")
    refiner, method, meta = load_refiner(model)
    net = refiner.base if isinstance(refiner, ShowerBridge) else refiner.model
    geometry = net.geometry
    if fastsim_from is not None:
        info = file_info(fastsim_from)
        if info.n_voxels != geometry.n_voxels:
            raise InputFileError(f"{fastsim_from}: showers have {info.n_voxels} voxels, the model's geometry "
                                 f"{geometry.name} has {geometry.n_voxels}")
        if n is not None and n > info.n_showers:
            raise InputFileError(f"{fastsim_from}: holds {info.n_showers} showers, --n asks for {n}")
        total = info.n_showers if n is None else n
        chunks = iter_showers(fastsim_from, chunk_size=batch_size, stop=total)
    else:
        if n is None or n < 1:
            raise CaloforgeError("--energy needs --n (number of showers, > 0)")
        total = n
        chunks = _fastsim_chunks(net, energy, n, seed, particle, batch_size)
    options = {
        "model": str(model), "method": method, "fastsim_from": None if fastsim_from is None else str(fastsim_from),
        "energy": energy, "n": int(total), "particle": particle if energy is not None else None,
        "t0": t0, "sigma0": s0, "steps": steps, "sampler": sampler,
        "network_evaluations": steps if method == "bridge" else network_evaluations(sampler, steps) if s0 > 0 else 0,
        "layers": layers if net.has_layer_model else None,
        "layer_steps": layer_steps if net.has_layer_model and layers != "fastsim" else None,
        "batch_size": batch_size, "seed": seed,
    }
    metadata = {"generator": f"caloforge-hybrid-{method}", **{k: v for k, v in options.items() if v is not None},
                "geometry": geometry.name, "geometry_description": geometry.to_dict(),
                "model_caloforge_version": meta.get("caloforge_version")}
    config_path = out.with_suffix(".yaml")
    start = time.perf_counter()
    done = 0
    with ShowerWriter(out, geometry.n_voxels, metadata, overwrite=overwrite) as writer, \
            tqdm(total=total, disable=not progress, desc="refine", unit="shower") as bar:
        for e, s in chunks:
            refined = refine_showers(refiner, e, s, sigma0=s0, steps=steps, sampler=sampler, layers=layers,
                                     layer_steps=layer_steps, batch_size=batch_size, seed=seed, first_index=done)
            writer.append(e, refined)
            done += len(e)
            bar.update(len(e))
    wall = time.perf_counter() - start
    save_config({**options, "out": str(out), "wall_s": round(wall, 2)}, config_path)
    return RefineResult(out, config_path, done, wall, done / max(wall, 1e-9))
