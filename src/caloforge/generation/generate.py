"""Sampling showers from a trained model, in memory or into a CaloChallenge file."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from caloforge.config import save_config
from caloforge.diffusion.model import ShowerDiffusionModel
from caloforge.diffusion.samplers import SAMPLERS, network_evaluations
from caloforge.errors import CaloforgeError, InputFileError
from caloforge.generation.compiled import compiled_voxel_network
from caloforge.generation.models import LoadedModel, load_model
from caloforge.generation.precision import check_precision, inference_precision
from caloforge.io import ENERGY_KEY, ShowerWriter, check_output_path, file_info, read_extra

__all__ = ["GenerationResult", "energies_from_spec", "generate_file", "generate_layer_energies", "generate_showers",
           "shard_showers"]


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _check_options(sampler: str, steps: int, batch_size: int) -> None:
    if sampler not in SAMPLERS:
        raise CaloforgeError(f"unknown sampler {sampler!r}; choose from {', '.join(sorted(SAMPLERS))}")
    if steps < 1:
        raise CaloforgeError(f"steps must be >= 1, got {steps}")
    if batch_size < 1:
        raise CaloforgeError(f"batch size must be >= 1, got {batch_size}")


def generate_showers(
    model: ShowerDiffusionModel | LoadedModel, energies_mev: np.ndarray, *, sampler: str = "heun", steps: int = 16,
    batch_size: int = 100, seed: int = 0, layer_sampler: str = "heun", layer_steps: int = 32,
    threads: int | None = None, progress: bool = False, first_index: int = 0, precision: str = "fp32",
    compile: bool = False,
) -> np.ndarray:
    """Showers (N, V) float32 MeV for incident ``energies_mev`` (N,) or (N, 1) MeV.

    ``sampler``: ``ddpm`` | ``ddim`` | ``heun``; ``steps``: noise levels of the voxel sampler
    (network evaluations: see :func:`~caloforge.diffusion.network_evaluations`); ``batch_size``:
    showers per network call; ``seed``: the same seed, options and batch size give the same
    showers; ``layer_sampler``/``layer_steps``: the (cheap) layer-energy model; ``threads``: torch
    CPU threads (default: unchanged). Each batch has its own random stream seeded by
    ``(seed, first_index + position of its first shower)``, so generating a long list in chunks
    (``first_index`` = chunk start) gives the same showers as in one call. ``precision``: ``fp32``
    or ``bf16`` network evaluations (:mod:`caloforge.generation.precision`). ``compile``: run the
    voxel network compiled by ``torch.compile`` (:mod:`caloforge.generation.compiled`; pays off for
    long jobs only).
    """
    net = model.model if isinstance(model, LoadedModel) else model
    check_precision(precision)
    _check_options(sampler, steps, batch_size)
    _check_options(layer_sampler, layer_steps, batch_size)
    energies = np.asarray(energies_mev, dtype=np.float32).reshape(-1, 1)
    if energies.size and not (np.all(np.isfinite(energies)) and np.all(energies > 0)):
        raise CaloforgeError("incident energies must be finite and > 0 MeV")
    out = np.empty((energies.shape[0], net.geometry.n_voxels), dtype=np.float32)
    net.eval()
    with _threads(threads), compiled_voxel_network(net, compile), \
            tqdm(total=len(energies), disable=not progress, desc="generate", unit="shower") as bar:
        for lo in range(0, len(energies), batch_size):
            e = torch.from_numpy(energies[lo:lo + batch_size])
            state = np.random.SeedSequence([int(seed), int(first_index + lo)]).generate_state(2, dtype=np.uint32)
            gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
            with torch.inference_mode(), inference_precision(precision):  # no autograd bookkeeping at all
                out[lo:lo + len(e)] = net.generate(e, sampler=sampler, steps=steps, generator=gen,
                                                   layer_sampler=layer_sampler, layer_steps=layer_steps).numpy()
            bar.update(len(e))
    return out


def generate_layer_energies(
    model: ShowerDiffusionModel | LoadedModel, energies_mev: np.ndarray, *, sampler: str = "heun", steps: int = 32,
    batch_size: int = 10000, seed: int = 0,
) -> np.ndarray:
    """Layer energies (N, L) float32 MeV from the layer-energy model alone (no voxels, no cell
    threshold): cheap, for large-sample studies of E_total/E_inc and layer energies."""
    net = model.model if isinstance(model, LoadedModel) else model
    if not net.has_layer_model:
        raise CaloforgeError("this model has no layer-energy model (norm: incident)")
    _check_options(sampler, steps, batch_size)
    energies = np.asarray(energies_mev, dtype=np.float32).reshape(-1, 1)
    out = np.empty((energies.shape[0], net.geometry.n_layers), dtype=np.float32)
    gen = torch.Generator().manual_seed(int(seed))
    for lo in range(0, len(energies), batch_size):
        e = torch.from_numpy(energies[lo:lo + batch_size])
        layers = net.sample_layers(e, sampler=sampler, steps=steps, generator=gen)
        out[lo:lo + len(e)] = net.layer_pre.inverse_transform(layers, e).numpy()
    return out


def shard_showers(n: int, batch_size: int, num_shards: int = 1, shard_index: int = 0) -> tuple[int, int]:
    """Shower indices ``[start, stop)`` of shard ``shard_index`` of ``num_shards`` of a job of ``n`` showers.

    Shards are made of whole batches of ``batch_size`` (each batch's random stream is seeded by the
    index of its first shower, see :func:`generate_showers`), split near-equally, so the shards
    concatenated in order equal the unsharded job bit for bit.
    """
    from caloforge.fullsim.simulate import shard_range  # numpy-only; no Geant4 import

    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise CaloforgeError(f"--shard-index {shard_index} is out of range for --num-shards {num_shards} "
                             "(expected 0 <= shard index < num shards)")
    n_batches = max(1, math.ceil(n / batch_size))  # an empty job is one empty shard
    if num_shards > n_batches:
        raise CaloforgeError(f"--num-shards {num_shards} is more than the {n_batches} batch(es) of {batch_size} showers "
                             "in this job: every shard needs at least one batch (lower --num-shards or --batch-size)")
    lo, hi = shard_range(n_batches, num_shards, shard_index)
    return lo * batch_size, min(hi * batch_size, n)


def energies_from_spec(energy: str, n: int, seed: int) -> np.ndarray:
    """(n,) float32 MeV from ``"E"`` (GeV, fixed) or ``"EMIN:EMAX"`` (GeV, log-uniform), seeded."""
    from caloforge.fullsim.source import EnergySpec  # numpy-only module; no Geant4 import

    spec = EnergySpec.parse(energy)
    rng = np.random.default_rng([int(seed), 2])
    return spec.energy_mev(rng.random(n)).astype(np.float32)


def resolve_energies(*, energy: str | None, energies_from: str | Path | None, n: int | None,
                     seed: int) -> np.ndarray:
    """(N,) float32 incident energies in MeV of a generation job: ``energy`` (GeV spec, needs ``n``)
    or the first ``n`` (all if None) incident energies of the CaloChallenge file ``energies_from``."""
    if (energy is None) == (energies_from is None):
        raise CaloforgeError("give exactly one of --energy and --energies-from")
    if energy is not None:
        if n is None or n < 1:
            raise CaloforgeError("--energy needs --n (number of showers, > 0)")
        return energies_from_spec(energy, n, seed)
    file_info(energies_from)
    energies = read_extra(energies_from, ENERGY_KEY).astype(np.float32).reshape(-1)
    if n is not None:
        if n > energies.size:
            raise InputFileError(f"{energies_from}: holds {energies.size} incident energies, --n asks for {n}")
        energies = energies[:n]
    return energies


@dataclass
class GenerationResult:
    """``path``: the written file; ``config_path``: its resolved options (YAML); ``n_showers``;
    ``wall_s``: generation time; ``showers_per_s``."""

    path: Path
    config_path: Path
    n_showers: int
    wall_s: float
    showers_per_s: float


def generate_file(
    out: str | Path, model: str | Path = "default", *, n: int | None = None, energy: str | None = None,
    energies_from: str | Path | None = None, sampler: str | None = None, steps: int | None = None,
    batch_size: int = 100, seed: int = 0, layer_sampler: str | None = None, layer_steps: int | None = None,
    threads: int | None = None,
    overwrite: bool = False, progress: bool = True, num_shards: int = 1, shard_index: int = 0,
    precision: str = "fp32", compile: bool = False,
) -> GenerationResult:
    """Generate showers into the CaloChallenge file ``out`` (atomic; ``out.yaml`` beside it).

    Energies: ``energy`` (GeV spec, needs ``n``) or ``energies_from`` (a CaloChallenge file; its
    first ``n`` incident energies, all if ``n`` is None). ``num_shards``/``shard_index``: write only
    this shard's part of the ``n``-shower job (see :func:`shard_showers`; join the shard files with
    ``caloforge merge``). Showers are written batch by batch, so memory does not grow with ``n``.
    Sampler options left at None take the model's recommended ones (:attr:`LoadedModel.sampling`).
    ``compile``: compile the voxel network once for the whole job (see :func:`generate_showers`).
    """
    out = check_output_path(out, overwrite)
    check_precision(precision)
    energies = resolve_energies(energy=energy, energies_from=energies_from, n=n, seed=seed)
    first, last = shard_showers(energies.size, batch_size, num_shards, shard_index)
    loaded = load_model(model)
    chosen = {"sampler": sampler, "steps": steps, "layer_sampler": layer_sampler, "layer_steps": layer_steps}
    settings = {**loaded.sampling, **{k: v for k, v in chosen.items() if v is not None}}
    sampler, steps = settings["sampler"], settings["steps"]
    layer_sampler, layer_steps = settings["layer_sampler"], settings["layer_steps"]
    _check_options(sampler, steps, batch_size)
    _check_options(layer_sampler, layer_steps, batch_size)
    geometry = loaded.geometry
    options = {
        "model": loaded.source, "sampler": sampler, "steps": steps,
        "network_evaluations": network_evaluations(sampler, steps), "batch_size": batch_size, "seed": seed,
        "layer_sampler": layer_sampler if loaded.model.has_layer_model else None,
        "layer_steps": layer_steps if loaded.model.has_layer_model else None,
        "energy": energy, "energies_from": None if energies_from is None else str(energies_from),
        "n": int(energies.size),
        "precision": None if precision == "fp32" else precision,
        "compiled": True if compile else None,
    }
    metadata = {
        "generator": "caloforge-diffusion", **{k: v for k, v in options.items() if v is not None},
        "geometry": geometry.name, "geometry_description": geometry.to_dict(),
        "model_caloforge_version": loaded.meta.get("caloforge_version"),
    }
    shards = {"num_shards": num_shards, "shard_index": shard_index, "shower_indices": [first, last]}
    if num_shards > 1:  # attributes `caloforge merge` checks
        metadata.update(shards)
    config_path = out.with_suffix(".yaml")
    start = time.perf_counter()
    with ShowerWriter(out, geometry.n_voxels, metadata, overwrite=overwrite) as writer, \
            compiled_voxel_network(loaded.model, compile), tqdm(total=last - first, disable=not progress, desc="generate", unit="shower") as bar:
        for lo in range(first, last, batch_size):
            chunk = energies[lo:lo + batch_size]
            showers = generate_showers(loaded, chunk, sampler=sampler, steps=steps, batch_size=batch_size,
                                       seed=seed, first_index=lo, layer_sampler=layer_sampler, layer_steps=layer_steps,
                                       threads=threads, precision=precision)
            writer.append(chunk, showers)
            bar.update(chunk.size)
    wall = time.perf_counter() - start
    save_config({**options, **shards, "out": str(out), "wall_s": round(wall, 2)}, config_path)
    return GenerationResult(out, config_path, last - first, wall, (last - first) / max(wall, 1e-9))
