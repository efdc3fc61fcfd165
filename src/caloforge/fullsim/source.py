"""The primary particle: allowed species, energy spectrum and per-shower randomness.

Every shower ``i`` of a job with seed ``S`` draws its incident energy and its Geant4 engine seeds
from ``numpy.random.default_rng([S, i])`` alone, so the output depends on ``(S, i)`` only: not on
the number of workers, the chunking or the sharding of the job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from caloforge.errors import ConfigError

__all__ = ["PARTICLES", "EnergySpec", "check_particle", "shower_plan", "MIN_ENERGY_GEV", "MAX_ENERGY_GEV"]

#: particles the minimal EM data tables support
PARTICLES = ("e-", "e+", "gamma")
_HADRONS = {
    "pi+", "pi-", "pi0", "proton", "anti_proton", "neutron", "anti_neutron", "kaon+", "kaon-", "kaon0",
    "kaon0L", "kaon0S", "lambda", "deuteron", "triton", "alpha", "he3", "p", "n", "pion", "kaon", "GenericIon",
}
MIN_ENERGY_GEV = 1e-3
MAX_ENERGY_GEV = 1e4


def check_particle(name: str) -> str:
    """Return ``name`` if it is a supported particle, else raise a :class:`ConfigError` saying why."""
    if name in PARTICLES:
        return name
    if name in _HADRONS or name.lower() in _HADRONS:
        raise ConfigError(
            f"particle {name!r}: hadronic physics needs the full Geant4 data tables (G4NDL, G4PARTICLEXS, ...), "
            f"which caloforge's EM-only setup does not provide; supported: {', '.join(PARTICLES)}"
        )
    raise ConfigError(f"unknown particle {name!r}; supported: {', '.join(PARTICLES)}")


@dataclass(frozen=True)
class EnergySpec:
    """Incident energy in GeV: fixed (``low == high``) or log-uniform in ``[low, high]``."""

    low_gev: float
    high_gev: float

    def __post_init__(self) -> None:
        for value in (self.low_gev, self.high_gev):
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ConfigError(f"energy: expected a number of GeV, got {value!r}")
            if not MIN_ENERGY_GEV <= value <= MAX_ENERGY_GEV:
                raise ConfigError(f"energy {value:g} GeV out of range [{MIN_ENERGY_GEV:g}, {MAX_ENERGY_GEV:g}] GeV")
        if self.low_gev > self.high_gev:
            raise ConfigError(f"energy range {self.low_gev:g}:{self.high_gev:g}: the lower bound exceeds the upper")

    @classmethod
    def parse(cls, text: str | float) -> "EnergySpec":
        """``"10"`` (fixed 10 GeV) or ``"1:100"`` (log-uniform from 1 to 100 GeV)."""
        parts = str(text).split(":")
        if len(parts) > 2:
            raise ConfigError(f"energy {text!r}: expected E or EMIN:EMAX in GeV (e.g. 10 or 1:100)")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ConfigError(f"energy {text!r}: expected E or EMIN:EMAX in GeV (e.g. 10 or 1:100)") from None
        return cls(values[0], values[-1])

    @property
    def fixed(self) -> bool:
        return self.low_gev == self.high_gev

    def __str__(self) -> str:
        return f"{self.low_gev:g}" if self.fixed else f"{self.low_gev:g}:{self.high_gev:g}"

    def energy_mev(self, u: np.ndarray) -> np.ndarray:
        """Energies (MeV) from uniform numbers ``u`` in [0, 1): log-uniform between the bounds."""
        lo, hi = math.log(self.low_gev * 1e3), math.log(self.high_gev * 1e3)
        return np.exp(lo + (hi - lo) * np.asarray(u, dtype=np.float64))


def shower_plan(seed: int, indices: np.ndarray, energy: EnergySpec) -> tuple[np.ndarray, np.ndarray]:
    """Incident energies (n,) float64 MeV and Geant4 engine seeds (n, 2) int64 for shower ``indices``.

    Shower ``i`` uses ``numpy.random.default_rng([seed, i])`` only (reproducible, order-free).
    The energy is stored as float32 in files, so it is rounded to float32 before simulation.
    """
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    u = np.empty(len(indices))
    seeds = np.empty((len(indices), 2), dtype=np.int64)
    for j, i in enumerate(np.asarray(indices, dtype=np.int64)):
        rng = np.random.default_rng([int(seed), int(i)])
        u[j] = rng.random()
        seeds[j] = rng.integers(1, 2**31 - 1, size=2)
    energies = energy.energy_mev(u).astype(np.float32).astype(np.float64)
    return energies, seeds
