"""Detector descriptions for the full simulation: a planar stack of slabs read out by a caloforge geometry.

A detector is a list of *blocks* (a sequence of slabs repeated ``repeat`` times); each slab has a
Geant4 NIST material, a thickness and an ``active`` flag. All slabs are discs of radius
``radius_mm`` perpendicular to the beam (+z). Consecutive active slabs are summed into readout
layers (``active_per_readout_layer``: one number for all layers, or a list with one count per
readout layer, 0 for readout layers without voxels), and every active deposit inside the readout
mesh becomes voxel energy ``deposit / sampling_fraction`` (MeV). Deposits beyond the outermost
radial edge of a layer are not recorded (as in the CaloChallenge).

Presets ship as YAML files in ``caloforge/data/detectors`` (``ds2``, ``ds3``, ``ds1-photons-like``,
``pbwo4``); users describe their own calorimeter in the same format (unknown keys are errors).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from caloforge.config import from_dict, load_config, to_dict
from caloforge.errors import CaloforgeError, ConfigError
from caloforge.geometry import CylindricalReadout, get_geometry

__all__ = ["Slab", "Block", "RegularMesh", "Detector", "DETECTOR_PRESETS", "load_detector", "detector_preset_path"]

#: preset name -> YAML file in ``caloforge/data/detectors``
DETECTOR_PRESETS = {
    "ds2": "ds2.yaml",
    "ds3": "ds3.yaml",
    "ds1-photons-like": "ds1-photons-like.yaml",
    "pbwo4": "pbwo4.yaml",
}


@dataclass(frozen=True)
class Slab:
    """One disc of material: ``material`` (Geant4 NIST name, e.g. ``G4_W``), ``thickness_mm``, ``active``."""

    material: str
    thickness_mm: float
    active: bool = False

    def __post_init__(self) -> None:
        if not self.material.strip():
            raise ValueError("slab material must not be empty")
        if not self.thickness_mm > 0:
            raise ValueError(f"slab thickness_mm must be > 0, got {self.thickness_mm}")


@dataclass(frozen=True)
class Block:
    """A sequence of slabs repeated ``repeat`` times (e.g. 90 x [W, Si]); ``name`` is a label."""

    slabs: list[Slab]
    repeat: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        if not self.slabs:
            raise ValueError(f"block {self.name!r}: needs at least one slab")
        if self.repeat < 1:
            raise ValueError(f"block {self.name!r}: repeat must be >= 1, got {self.repeat}")


@dataclass(frozen=True)
class RegularMesh:
    """A regular cylindrical readout: ``n_layers`` x ``n_alpha`` x ``n_r`` bins of ``r_bin_mm``."""

    n_layers: int
    n_alpha: int
    n_r: int
    r_bin_mm: float

    def __post_init__(self) -> None:
        if min(self.n_layers, self.n_alpha, self.n_r) < 1 or not self.r_bin_mm > 0:
            raise ValueError(f"readout mesh needs positive sizes, got {self}")


@dataclass(frozen=True)
class Detector:
    """A sampling (or homogeneous) calorimeter: slab stack, transverse size, readout and calibration.

    ``readout``: a geometry preset name (``ds2``...), a CaloChallenge binning XML path (relative
    paths are resolved against the YAML file) or a :class:`RegularMesh`.
    ``sampling_fraction``: one value, or one per readout layer; voxel energy = active deposit / it.
    """

    name: str
    stack: list[Block]
    readout: str | RegularMesh
    active_per_readout_layer: int | list[int] = 1
    sampling_fraction: float | list[float] = 1.0
    radius_mm: float = 300.0
    world_material: str = "G4_Galactic"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("name must not be empty")
        if not self.stack:
            raise ValueError("stack must hold at least one block")
        if not self.radius_mm > 0:
            raise ValueError(f"radius_mm must be > 0, got {self.radius_mm}")
        fractions = np.atleast_1d(np.asarray(self.sampling_fraction, dtype=float))
        if np.any(~(fractions > 0)) or np.any(fractions > 1):
            raise ValueError(f"sampling_fraction must be in (0, 1], got {self.sampling_fraction}")

    # ------------------------------------------------------------------ stack
    @cached_property
    def slabs(self) -> tuple[Slab, ...]:
        """All slabs front to back (blocks expanded)."""
        return tuple(slab for block in self.stack for _ in range(block.repeat) for slab in block.slabs)

    @property
    def n_active(self) -> int:
        return sum(slab.active for slab in self.slabs)

    @property
    def depth_mm(self) -> float:
        return float(sum(slab.thickness_mm for slab in self.slabs))

    @cached_property
    def materials(self) -> tuple[str, ...]:
        """Distinct material names, world material included, in first-use order."""
        names = [self.world_material] + [slab.material for slab in self.slabs]
        return tuple(dict.fromkeys(names))

    # ------------------------------------------------------------------ readout
    @cached_property
    def geometry(self) -> CylindricalReadout:
        """The readout geometry (voxelisation of the output files)."""
        if isinstance(self.readout, RegularMesh):
            m = self.readout
            return CylindricalReadout.regular(self.name, m.n_layers, m.n_alpha, m.n_r, m.r_bin_mm)
        return get_geometry(self.readout)

    @cached_property
    def active_layer_counts(self) -> np.ndarray:
        """(L,) int64 number of consecutive active slabs summed into each readout layer."""
        n_layers = self.geometry.n_layers
        if isinstance(self.active_per_readout_layer, int):
            return np.full(n_layers, self.active_per_readout_layer, dtype=np.int64)
        return np.asarray(self.active_per_readout_layer, dtype=np.int64)

    @cached_property
    def readout_layer_of_active(self) -> np.ndarray:
        """(n_active,) int64 readout layer of each active slab, front to back."""
        return np.repeat(np.arange(self.geometry.n_layers), self.active_layer_counts)

    @cached_property
    def calibration(self) -> np.ndarray:
        """(L,) float64 factor from active deposit to voxel energy (1 / sampling fraction)."""
        fractions = np.asarray(self.sampling_fraction, dtype=np.float64)
        return np.broadcast_to(1.0 / fractions, (self.geometry.n_layers,)).copy()

    def check(self, where: str = "") -> "Detector":
        """Raise :class:`ConfigError` (prefixed by ``where``) if stack and readout do not fit together."""
        prefix = f"{where or self.name}: "
        geo = self.geometry
        counts = self.active_layer_counts
        if counts.ndim != 1 or counts.size != geo.n_layers or np.any(counts < 0):
            raise ConfigError(
                f"{prefix}active_per_readout_layer must be one count >= 0 or a list of {geo.n_layers} counts "
                f"(readout {geo.name} has {geo.n_layers} layers), got {self.active_per_readout_layer}"
            )
        if int(counts.sum()) != self.n_active:
            raise ConfigError(
                f"{prefix}the stack has {self.n_active} active slabs but active_per_readout_layer maps "
                f"{int(counts.sum())} to the {geo.n_layers} readout layers"
            )
        empty = [i for i, lay in enumerate(geo.layers) if lay.n_voxels == 0 and counts[i] > 0]
        if empty:
            raise ConfigError(f"{prefix}readout layers {empty} have no voxels but active slabs map to them "
                              "(make those slabs passive or give them 0 active slabs)")
        fractions = np.atleast_1d(np.asarray(self.sampling_fraction, dtype=float))
        if fractions.size not in (1, geo.n_layers):
            raise ConfigError(f"{prefix}sampling_fraction must be one value or {geo.n_layers} values, "
                              f"got {fractions.size}")
        r_max = max(float(lay.r_edges[-1]) for lay in geo.layers)
        if r_max > self.radius_mm:
            raise ConfigError(f"{prefix}readout reaches r = {r_max:g} mm, beyond the detector radius_mm "
                              f"= {self.radius_mm:g}")
        return self

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON representation (round-trips through :func:`caloforge.config.from_dict`)."""
        return to_dict(self)

    def summary(self) -> str:
        """One line: name, stack depth, active slabs, readout."""
        return (f"{self.name}: {len(self.slabs)} slabs ({self.n_active} active), depth {self.depth_mm:g} mm, "
                f"radius {self.radius_mm:g} mm, readout {self.geometry.name} ({self.geometry.n_voxels} voxels)")


def detector_preset_path(name: str) -> Path:
    """Path of the shipped YAML file of detector preset ``name``."""
    return Path(str(resources.files("caloforge") / "data" / "detectors" / DETECTOR_PRESETS[name]))


def _resolve_readout(detector: Detector, base: Path) -> Detector:
    readout = detector.readout
    if isinstance(readout, str) and readout.endswith(".xml") and not Path(readout).is_absolute():
        return replace(detector, readout=str((base / readout).resolve()))
    return detector


def load_detector(spec: str | Path | Detector | dict) -> Detector:
    """A :class:`Detector` from a preset name, a YAML file, a mapping or a Detector (checked).

    Raises :class:`ConfigError` naming the file and key for unknown keys, wrong types and a stack
    that does not fit the readout.
    """
    if isinstance(spec, Detector):
        return spec.check()
    if isinstance(spec, dict):
        return from_dict(Detector, spec, where="detector").check()
    text = str(spec)
    if text in DETECTOR_PRESETS:
        path = detector_preset_path(text)
    elif text.endswith((".yaml", ".yml")):
        path = Path(text)
    else:
        raise ConfigError(f"unknown detector {text!r}; presets: {sorted(DETECTOR_PRESETS)} (or a detector .yaml file)")
    detector = _resolve_readout(load_config(Detector, path), path.parent)
    try:
        detector.geometry
    except CaloforgeError as exc:  # from the geometry module: missing XML, unknown preset
        raise ConfigError(f"{path}: readout: {exc}") from None
    return detector.check(str(path))
