"""Geant4 reference showers: the library behind ``caloforge simulate``.

:func:`simulate` writes a CaloChallenge HDF5 file (``incident_energies`` (N, 1) MeV, ``showers``
(N, V) MeV, extra ``cpu_time_s`` (N,) CPU seconds per shower) plus the resolved config YAML next to
it; :func:`simulate_showers` returns the arrays in memory (benchmarks, comparisons with generators).
Both split the job into chunks of shower indices that spawned worker processes simulate; shower
``i`` depends only on ``(seed, i)`` (see :mod:`caloforge.fullsim.source`), so the output is the
same for any number of workers, any chunk size and any sharding (``num_shards`` jobs of
``n / num_shards`` showers whose files, concatenated in shard order, equal the single job).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from caloforge.config import save_config
from caloforge.errors import CaloforgeError, ConfigError, InputFileError
from caloforge.fullsim.detector import Detector, load_detector
from caloforge.fullsim.environment import geant4_data_env
from caloforge.fullsim.source import EnergySpec, check_particle
from caloforge.fullsim.workers import WorkerPool
from caloforge.io import ShowerWriter, check_output_path, read_extra

__all__ = ["SimulationConfig", "SimulationResult", "simulate", "simulate_showers", "geant4_seconds_per_shower",
           "shard_range", "config_path_for"]

PHYSICS = "G4EmStandardPhysics (option 0), default production cuts (range cut 1 mm)"
MAX_CHUNK = 100


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a simulation job (written next to the output as YAML).

    ``energy``: ``"10"`` (GeV, fixed) or ``"1:100"`` (GeV, log-uniform); ``n``: showers of the
    whole job (all shards); ``chunk_size``: showers per worker task (0 = automatic; it does not
    change the output, only flush and progress granularity).
    """

    detector: str = "ds2"
    particle: str = "e-"
    energy: str = "10"
    n: int = 100
    seed: int = 0
    workers: int = 1
    num_shards: int = 1
    shard_index: int = 0
    chunk_size: int = 0

    def check(self) -> "SimulationConfig":
        check_particle(self.particle)
        EnergySpec.parse(self.energy)
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.chunk_size < 0:
            raise ConfigError(f"chunk_size must be >= 0, got {self.chunk_size}")
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            raise ConfigError(f"shard index {self.shard_index} out of range for {self.num_shards} shard(s) "
                              f"(expected 0 <= shard_index < num_shards)")
        if self.num_shards > self.n:
            raise ConfigError(f"{self.num_shards} shards for {self.n} showers: every shard needs at least one")
        return self


@dataclass
class SimulationResult:
    """What :func:`simulate` produced: the file, its showers, wall time and Geant4 CPU time per shower."""

    path: Path
    config_path: Path
    n_showers: int
    wall_s: float
    cpu_s_median: float
    geant4_version: str
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)


def shard_range(n: int, num_shards: int, shard_index: int) -> tuple[int, int]:
    """Shower indices ``[start, stop)`` of shard ``shard_index`` of ``num_shards`` (near-equal parts)."""
    return shard_index * n // num_shards, (shard_index + 1) * n // num_shards


def config_path_for(out: str | Path) -> Path:
    """Where the resolved config of output ``out`` goes: ``FILE.h5`` -> ``FILE.yaml``."""
    return Path(out).with_suffix(".yaml")


def _chunks(start: int, stop: int, workers: int, chunk_size: int) -> list[np.ndarray]:
    n = stop - start
    size = chunk_size or max(1, min(MAX_CHUNK, math.ceil(n / (4 * workers))))
    return [np.arange(lo, min(lo + size, stop)) for lo in range(start, stop, size)]


def _job(config: SimulationConfig, detector: Detector, offset_mm: tuple[float, float]) -> dict[str, Any]:
    x, y = (float(v) for v in offset_mm)
    if math.hypot(x, y) >= detector.radius_mm:
        raise ConfigError(f"beam offset ({x:g}, {y:g}) mm is outside the detector (radius {detector.radius_mm:g} mm)")
    return {"env": geant4_data_env(), "detector": detector, "particle": config.particle,
            "energy": config.energy, "seed": config.seed, "offset_mm": (x, y)}


def _ordered_results(pool: WorkerPool, chunks: list[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Chunk results in chunk order (finished chunks wait in a buffer until their turn)."""
    buffer: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    next_id = 0
    for chunk_id, energies, showers, cpu_s in pool.map(chunks):
        buffer[chunk_id] = (energies, showers, cpu_s)
        while next_id in buffer:
            yield buffer.pop(next_id)
            next_id += 1


def _detector_name(detector: str | Path | Detector) -> str:
    return detector.name if isinstance(detector, Detector) else str(detector)


def simulate_showers(
    detector: str | Path | Detector = "ds2",
    particle: str = "e-",
    energy: str | float = "10",
    n: int = 100,
    *,
    seed: int = 0,
    workers: int = 1,
    first_index: int = 0,
    offset_mm: tuple[float, float] = (0.0, 0.0),
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate showers ``first_index .. first_index + n - 1`` of job ``seed`` in memory.

    ``offset_mm``: transverse (x, y) beam position in mm (default on the axis; direction +z).
    Returns ``energies`` (n, 1) float32 MeV, ``showers`` (n, V) float32 MeV and ``cpu_s`` (n,)
    float64 Geant4 CPU seconds per shower.
    """
    config = SimulationConfig(detector=_detector_name(detector), particle=particle, energy=str(energy), n=n,
                              seed=seed, workers=workers).check()
    det = load_detector(detector)
    chunks = _chunks(first_index, first_index + n, workers, 0)
    parts = []
    with WorkerPool(min(workers, len(chunks)), _job(config, det, offset_mm)) as pool, \
            tqdm(total=n, unit=" showers", desc=f"geant4 {det.name}", disable=not progress) as bar:
        for part in _ordered_results(pool, chunks):
            parts.append(part)
            bar.update(len(part[0]))
    energies = np.concatenate([p[0] for p in parts]).astype(np.float32).reshape(-1, 1)
    return energies, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def _metadata(config: SimulationConfig, det: Detector, start: int, stop: int) -> dict[str, Any]:
    geo = det.geometry
    meta: dict[str, Any] = {
        "geometry": geo.name,
        "geometry_description": geo.to_dict(),
        "detector": det.name,
        "detector_description": det.to_dict(),
        "particle": config.particle,
        "energy": str(EnergySpec.parse(config.energy)),
        "energy_spectrum": "fixed" if EnergySpec.parse(config.energy).fixed else "log-uniform",
        "energy_unit_in_file": "MeV",
        "physics": PHYSICS,
        "seed": config.seed,
        "n_requested": config.n,
        "shower_indices": [start, stop],
    }
    if config.num_shards > 1:
        meta.update(num_shards=config.num_shards, shard_index=config.shard_index)
    return meta


def simulate(
    out: str | Path,
    detector: str | Path | Detector = "ds2",
    particle: str = "e-",
    energy: str | float = "10",
    n: int = 100,
    *,
    seed: int = 0,
    workers: int = 1,
    num_shards: int = 1,
    shard_index: int = 0,
    chunk_size: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> SimulationResult:
    """Simulate ``n`` showers (this shard's part of them) with Geant4 and write them to ``out``.

    ``detector``: preset (``ds2``, ``ds3``, ``ds1-photons-like``, ``pbwo4``), YAML file or
    :class:`Detector`; ``particle``: ``e-``, ``e+`` or ``gamma``; ``energy``: GeV, ``"10"`` or
    ``"1:100"`` (log-uniform). Results are flushed after every chunk: if the run stops,
    ``<out>.partial.h5`` keeps every finished shower. Raises :class:`CaloforgeError` subclasses
    for user errors (unknown particle, energy out of range, bad detector, missing Geant4 data,
    existing or unwritable output).
    """
    config = SimulationConfig(detector=_detector_name(detector), particle=particle, energy=str(energy), n=n,
                              seed=seed, workers=workers, num_shards=num_shards, shard_index=shard_index,
                              chunk_size=chunk_size).check()
    det = load_detector(detector)
    job = _job(config, det, (0.0, 0.0))
    out = check_output_path(out, overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaloforgeError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    start, stop = shard_range(config.n, config.num_shards, config.shard_index)
    chunks = _chunks(start, stop, config.workers, config.chunk_size)
    metadata = _metadata(config, det, start, stop)
    t0 = time.perf_counter()
    cpu: list[np.ndarray] = []
    with WorkerPool(min(config.workers, len(chunks)), job) as pool:
        pool.wait_ready()  # user errors found by Geant4 (materials) surface before any file is written
        metadata["generator"] = pool.geant4_version
        config_path = save_config({"simulation": config, "detector": det.to_dict(), "output": str(out)},
                                  config_path_for(out))
        with ShowerWriter(out, det.geometry.n_voxels, metadata, overwrite=overwrite) as writer, \
                tqdm(total=stop - start, unit=" showers", desc=f"geant4 {det.name} {config.particle}",
                     disable=not progress, smoothing=0.1) as bar:
            for energies, showers, cpu_s in _ordered_results(pool, chunks):
                writer.append(energies, showers, cpu_time_s=cpu_s)
                cpu.append(cpu_s)
                bar.update(len(energies))
        version = pool.geant4_version
    cpu_all = np.concatenate(cpu) if cpu else np.zeros(0)
    return SimulationResult(out, config_path, stop - start, time.perf_counter() - t0,
                            float(np.median(cpu_all)) if cpu_all.size else float("nan"), version, metadata)


def geant4_seconds_per_shower(path: str | Path) -> float:
    """Median Geant4 CPU seconds per shower of a simulated file (its ``cpu_time_s`` dataset)."""
    try:
        cpu_s = read_extra(path, "cpu_time_s")
    except InputFileError as exc:
        raise InputFileError(f"{exc}; only files written by `caloforge simulate` hold Geant4 CPU times") from None
    if cpu_s.size == 0:
        raise InputFileError(f"{path}: 'cpu_time_s' is empty")
    return float(np.median(cpu_s))
