"""FastSim jobs that write files: the library behind ``caloforge fastsim`` and ``caloforge fastsim fit``.

:func:`generate` writes a CaloChallenge HDF5 file (``incident_energies`` (N, 1) MeV, ``showers``
(N, V) MeV) through :class:`caloforge.io.ShowerWriter` (atomic, ``*.partial.h5`` on interruption),
the parameters used as ``FILE.params.yaml`` (loadable with ``--params``) and the resolved config
as ``FILE.yaml``. :func:`fit_file` fits parameters to Geant4 showers and writes them as YAML.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from caloforge.config import save_config
from caloforge.errors import ConfigError, InputFileError
from caloforge.fastsim.compare import compare_summaries
from caloforge.fastsim.detector import get_detector
from caloforge.fastsim.fit import fit
from caloforge.fastsim.params import FastSimParams, resolve_params, save_params
from caloforge.fastsim.sampling import FastSim
from caloforge.fastsim.summary import Summariser
from caloforge.fullsim.source import EnergySpec, check_particle
from caloforge.io import ShowerWriter, check_output_path, file_info, read_showers

__all__ = ["FastSimConfig", "FastSimResult", "FitConfig", "generate", "fit_file", "incident_energies"]

GENERATOR = "caloforge-fastsim"
WRITE_BLOCK = 2048  # showers per ShowerWriter.append


@dataclass(frozen=True)
class FastSimConfig:
    """Everything that determines a FastSim file (written next to it as YAML).

    ``energy``: GeV, ``"10"`` (fixed) or ``"1:100"`` (log-uniform); ``energy_from``: take the
    incident energies of the first ``n`` showers of this CaloChallenge file instead (e.g. to compare
    with a Geant4 file shower by shower in energy); ``params``: parameter YAML, ``"gflash"`` or
    None (the fitted set shipped for the detector); ``workers``: threads (output does not depend on it);
    ``compression``: HDF5 filter of the showers, ``gzip`` (CaloChallenge default, the slowest part
    of a FastSim job), ``lzf`` (h5py's fast filter, ~25 % larger) or ``none``.
    """

    detector: str = "ds2"
    particle: str = "e-"
    energy: str = "10"
    n: int = 1000
    seed: int = 0
    params: str | None = None
    energy_from: str | None = None
    workers: int = 2
    compression: str = "gzip"


COMPRESSIONS = {"gzip": "gzip", "lzf": "lzf", "none": None}


@dataclass(frozen=True)
class FastSimResult:
    path: Path
    config_path: Path
    params_path: Path
    n_showers: int
    wall_s: float

    @property
    def showers_per_s(self) -> float:
        return self.n_showers / max(self.wall_s, 1e-12)


def _paths(out: Path) -> tuple[Path, Path]:
    return out.with_suffix(".yaml"), out.with_suffix(".params.yaml")


def incident_energies(config: FastSimConfig) -> np.ndarray:
    """Incident energies (n,) float64 MeV of a job, rounded to float32 as stored in the file.

    Drawn log-uniformly from ``numpy.random.default_rng([seed, 0])``, or read from ``energy_from``.
    """
    if config.n < 1:
        raise ConfigError(f"n must be >= 1, got {config.n}")
    if config.energy_from:
        info = file_info(config.energy_from)
        if info.n_showers < config.n:
            raise InputFileError(f"{config.energy_from}: holds {info.n_showers} showers, fewer than n = {config.n}")
        energies = read_showers(config.energy_from, max_showers=config.n)[0][:, 0]
        if np.any(~np.isfinite(energies) | (energies <= 0)):
            raise InputFileError(f"{config.energy_from}: incident energies must be finite and > 0")
        return energies.astype(np.float64)
    spec = EnergySpec.parse(config.energy)
    u = np.random.default_rng([int(config.seed), 0]).random(config.n)
    return spec.energy_mev(u).astype(np.float32).astype(np.float64)


def generate(out: str | Path, config: FastSimConfig, *, overwrite: bool = False, progress: bool = True,
             params: FastSimParams | None = None) -> FastSimResult:
    """Simulate ``config.n`` showers with FastSim into ``out`` (CaloChallenge HDF5).

    ``params`` overrides ``config.params`` with an in-memory set. Same config and seed give the
    same file. Raises :class:`~caloforge.errors.CaloforgeError` for user errors before writing.
    """
    out = Path(out)
    check_particle(config.particle)
    if config.compression not in COMPRESSIONS:
        raise ConfigError(f"compression {config.compression!r}: expected one of {sorted(COMPRESSIONS)}")
    if config.seed < 0:
        raise ConfigError(f"seed must be >= 0, got {config.seed}")
    config_path, params_path = _paths(out)
    for path in (out, config_path, params_path):
        check_output_path(path, overwrite)
    detector = get_detector(config.detector)
    resolved = resolve_params(params if params is not None else config.params, detector, config.particle)
    energies = incident_energies(config)
    sim = FastSim(detector, resolved, n_workers=config.workers)
    spec = "from file" if config.energy_from else str(EnergySpec.parse(config.energy))
    metadata = {
        "generator": GENERATOR,
        "geometry": detector.geometry.name,
        "geometry_description": detector.geometry.to_dict(),
        "detector": detector.name,
        "particle": config.particle,
        "energy": spec,
        "energy_unit_in_file": "MeV",
        "seed": config.seed,
        "n_requested": config.n,
        "params": resolved.to_dict(),
    }
    t0 = time.perf_counter()
    with ShowerWriter(out, detector.geometry.n_voxels, metadata, overwrite=overwrite,
                      compression=COMPRESSIONS[config.compression]) as writer:
        buffer: list[np.ndarray] = []
        start = 0
        for lo, hi, showers in sim.iter_chunks(energies, config.seed, progress=progress,
                                               desc=f"fastsim {detector.name} {config.particle}"):
            buffer.append(showers)
            if hi - start >= WRITE_BLOCK or hi == energies.size:  # fewer, larger appends (each one flushes)
                writer.append(energies[start:hi], np.concatenate(buffer))
                buffer, start = [], hi
    wall = time.perf_counter() - t0
    save_params(resolved, params_path)
    save_config({"fastsim": config, "params_file": params_path.name, "output": out.name,
                 "detector": detector.stack_summary(), "params": resolved.to_dict()}, config_path)
    return FastSimResult(out, config_path, params_path, config.n, wall)


@dataclass(frozen=True)
class FitConfig:
    """A FastSim fit job (written next to the parameters as ``P.fit.yaml``).

    ``data``: Geant4 CaloChallenge file(s) of ``particle`` showers on ``detector``'s readout;
    ``n_sim``: showers re-simulated per fit step; ``max_showers``: read at most this many per file;
    ``layer_scale`` / ``early``: also fit per-layer visible-energy factors / the early component
    (both False: pure GFLASH forms); ``compare_with``: reference file
    for the comparison written next to the parameters (default: the first data file).
    """

    data: list[str]
    detector: str = "ds2"
    particle: str = "e-"
    seed: int = 0
    n_iterations: int = 3
    n_sim: int = 2000
    max_showers: int | None = None
    workers: int = 2
    layer_scale: bool = True
    early: bool = True
    compare_with: str | None = None


def fit_file(out: str | Path, config: FitConfig, *, overwrite: bool = False, progress: bool = True,
             log: Callable[[str], None] | None = None) -> tuple[FastSimParams, dict[str, float] | None]:
    """Fit parameters to ``config.data`` and write them to ``out`` (YAML, atomically).

    FastSim is then run at the energies of a reference file (``config.compare_with``, e.g. an
    independent Geant4 test set, else the first data file; at most ``n_sim`` showers, each energy
    simulated 4 times) and
    :func:`~caloforge.fastsim.compare.compare_summaries` is returned and written into ``P.fit.yaml``.
    """
    out = Path(out)
    check_particle(config.particle)
    fit_config_path = out.with_suffix(".fit.yaml")
    for path in (out, fit_config_path):
        check_output_path(path, overwrite)
    detector = get_detector(config.detector)
    params = fit(config.data, detector, particle=config.particle, seed=config.seed, max_showers=config.max_showers,
                 n_iterations=config.n_iterations, n_sim=config.n_sim, n_workers=config.workers,
                 layer_scale=config.layer_scale, early=config.early, progress=progress, log=log)
    reference = config.compare_with or config.data[0]
    summariser = Summariser(detector.geometry)
    ref = summariser.from_file(reference, max_showers=config.n_sim)
    sim = FastSim(detector, params, n_workers=config.workers)
    energies = np.tile(ref.e_inc, 4)  # 4 FastSim showers per reference shower: less FastSim noise
    other = summariser(energies, sim.sample(energies, config.seed + 1))
    comparison = compare_summaries(ref, other, detector)
    save_params(params, out)
    save_config({"fit": config, "params_file": out.name, "comparison_with": Path(reference).name,
                 "comparison": comparison}, fit_config_path)
    return params, comparison
