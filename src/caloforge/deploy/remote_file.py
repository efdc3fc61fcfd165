"""``caloforge generate --server URL``: showers from a model served by Triton into a CaloChallenge file.

The sampler, its steps and the model are those baked into the served graph (``caloforge export``);
the client chooses the energies, the seed, the request size and how many requests are in flight.
The file is written batch by batch through :class:`caloforge.io.ShowerWriter` (atomic; a crash
keeps the finished batches in ``OUT.partial.h5``) with the usual ``OUT.yaml`` beside it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from caloforge.config import save_config
from caloforge.deploy.client import ShowerClient, iter_generate_remote
from caloforge.generation import GenerationResult, resolve_energies
from caloforge.geometry import CylindricalReadout
from caloforge.io import ShowerWriter, check_output_path

__all__ = ["generate_remote_file"]


def generate_remote_file(
    out: str | Path, url: str, *, n: int | None = None, energy: str | None = None,
    energies_from: str | Path | None = None, batch_size: int = 100, seed: int = 0, protocol: str | None = None,
    model_name: str = "caloforge", concurrency: int = 4, timeout_s: float = 120.0, overwrite: bool = False,
    progress: bool = True,
) -> GenerationResult:
    """Generate showers on the Triton server at ``url`` into the CaloChallenge file ``out``.

    Energies as in :func:`caloforge.generation.generate_file` (``energy`` GeV spec with ``n``, or
    ``energies_from``). ``batch_size``: showers per request (at most the served max_batch_size);
    ``concurrency``: requests in flight (the server batches across them). With the same seed and
    batch size the showers equal in-process generation with the served sampler (float rounding).
    """
    out = check_output_path(out, overwrite)
    energies = resolve_energies(energy=energy, energies_from=energies_from, n=n, seed=seed)
    with ShowerClient(url, protocol=protocol, model_name=model_name, timeout_s=timeout_s) as probe:
        served = probe.served_metadata()
        address = f"{probe.protocol}://{probe.address}"
    geometry = CylindricalReadout.from_dict(served["geometry"])
    options = {
        "server": address, "model_name": model_name, "sampler": served.get("sampler"), "steps": served.get("steps"),
        "batch_size": batch_size, "concurrency": concurrency, "seed": seed, "energy": energy,
        "energies_from": None if energies_from is None else str(energies_from), "n": int(energies.size),
    }
    metadata = {"generator": "caloforge-diffusion (Triton)", **{k: v for k, v in options.items() if v is not None},
                "geometry": geometry.name, "geometry_description": geometry.to_dict(),
                "model_caloforge_version": served.get("caloforge_version")}
    start = time.perf_counter()
    with ShowerWriter(out, geometry.n_voxels, metadata, overwrite=overwrite) as writer, \
            tqdm(total=int(energies.size), disable=not progress, desc="triton", unit="shower") as bar:
        for first, showers in iter_generate_remote(url, energies, batch_size, seed, protocol=protocol,
                                                   model_name=model_name, concurrency=concurrency,
                                                   timeout_s=timeout_s):
            writer.append(energies[first:first + len(showers)], np.asarray(showers, dtype=np.float32))
            bar.update(len(showers))
    wall = time.perf_counter() - start
    config_path = out.with_suffix(".yaml")
    save_config({**options, "out": str(out), "wall_s": round(wall, 2)}, config_path)
    return GenerationResult(out, config_path, int(energies.size), wall, energies.size / max(wall, 1e-9))
