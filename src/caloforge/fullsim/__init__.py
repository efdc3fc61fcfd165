"""Full simulation: Geant4 (geant4_pybind) reference showers in CaloChallenge format.

Geant4 itself runs only in spawned worker processes (:mod:`caloforge.fullsim.workers`); importing
this package does not import geant4_pybind. Entry points: :func:`simulate` (writes a file),
:func:`simulate_showers` (in memory), :func:`load_detector` (presets and YAML detector files),
:func:`geant4_seconds_per_shower` (Geant4's CPU time per shower from a simulated file).
"""

from caloforge.fullsim.detector import DETECTOR_PRESETS, Block, Detector, RegularMesh, Slab, load_detector
from caloforge.fullsim.environment import Geant4DataError, geant4_data_env
from caloforge.fullsim.simulate import (
    SimulationConfig,
    SimulationResult,
    config_path_for,
    geant4_seconds_per_shower,
    shard_range,
    simulate,
    simulate_showers,
)
from caloforge.fullsim.source import PARTICLES, EnergySpec, check_particle
from caloforge.fullsim.workers import SimulationError

__all__ = [
    "DETECTOR_PRESETS",
    "PARTICLES",
    "Block",
    "Detector",
    "EnergySpec",
    "Geant4DataError",
    "RegularMesh",
    "SimulationConfig",
    "SimulationError",
    "SimulationResult",
    "Slab",
    "check_particle",
    "config_path_for",
    "geant4_data_env",
    "geant4_seconds_per_shower",
    "load_detector",
    "shard_range",
    "simulate",
    "simulate_showers",
]
