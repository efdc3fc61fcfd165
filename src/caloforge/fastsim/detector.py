"""What FastSim needs to know about a calorimeter, derived from the project's detector description.

The detector is the one Geant4 simulates (:class:`caloforge.fullsim.Detector`: a planar stack of
slab blocks, a readout and the active-slab -> readout-layer map; presets ``ds2``, ``ds3``,
``ds1-photons-like``, ``pbwo4`` or a YAML file). FastSim reduces it to

* depth *slices* in radiation lengths, each recorded in one readout layer or not at all (blocks
  without active slabs: dead material), at most ``max_slice_x0`` thick. Every period (one
  repetition of a block) belongs to the readout layer of its active slab;
* the local Moliere radius of each slice (the period-averaged mix of its block);
* the effective constants of the *main* block (the sampling block with the most radiation
  lengths) that the GFLASH parametrisation is written in, with the sampling-calorimeter formulas of
  Grindhammer & Peters, arXiv:hep-ex/0001020, sec. 2 (f_i thickness, w_i mass fractions of a period)::

    1/X0_eff = sum_i f_i / X0_i,   1/R_M,eff = sum_i f_i / R_M,i,   E_c,eff = X0_eff sum_i f_i E_c,i / X0_i,
    Z_eff = sum_i w_i Z_i,   F_s = X0_eff / d_period,   e_hat = 1 / (1 + 0.007 (Z_active - Z_passive)).

Material constants come from :data:`MATERIALS` (PDG values, Geant4 NIST names).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from caloforge.errors import ConfigError
from caloforge.fullsim.detector import Detector, load_detector
from caloforge.geometry import CylindricalReadout

#: Moliere radius R_M = E_s X0 / E_c with the scale energy E_s = 21.2052 MeV (PDG)
SCALE_ENERGY_MEV = 21.2052


@dataclass(frozen=True)
class Material:
    """Constants of one material: atomic number ``z`` (mass-weighted mean for compounds), ``a``
    g/mol, ``density_g_cm3``, radiation length ``x0_mm``, electron critical energy ``critical_mev``."""

    z: float
    a: float
    density_g_cm3: float
    x0_mm: float
    critical_mev: float

    @property
    def moliere_mm(self) -> float:
        return SCALE_ENERGY_MEV * self.x0_mm / self.critical_mev


#: PDG "Atomic and nuclear properties of materials" (scintillator values approximate)
MATERIALS: dict[str, Material] = {
    "G4_W": Material(74, 183.84, 19.3, 3.504, 7.97),
    "G4_Si": Material(14, 28.0855, 2.329, 93.70, 40.19),
    "G4_Pb": Material(82, 207.2, 11.35, 5.612, 7.43),
    "G4_Fe": Material(26, 55.845, 7.874, 17.57, 21.68),
    "G4_Cu": Material(29, 63.546, 8.96, 14.36, 19.42),
    "G4_lAr": Material(18, 39.948, 1.396, 140.0, 32.84),
    "G4_PbWO4": Material(68.36, 151.68, 8.30, 8.903, 9.64),
    "G4_PLASTIC_SC_VINYLTOLUENE": Material(5.58, 11.8, 1.032, 425.4, 94.1),
}


def _material(name: str, where: str) -> Material:
    if name not in MATERIALS:
        raise ConfigError(f"{where}: FastSim has no constants for material {name!r}; known: {sorted(MATERIALS)}")
    return MATERIALS[name]


@dataclass(frozen=True)
class StackConstants:
    """Effective constants of a period mix (see the module docstring)."""

    x0_mm: float
    moliere_mm: float
    critical_mev: float
    z_eff: float
    sampling_frequency: float
    e_hat: float


def period_constants(slabs: list, where: str = "detector") -> StackConstants:
    """Effective constants of one period of slabs (objects with ``material``, ``thickness_mm``, ``active``)."""
    mats = [_material(s.material, where) for s in slabs]
    d = np.array([s.thickness_mm for s in slabs], dtype=np.float64)
    x0 = np.array([m.x0_mm for m in mats])
    rm = np.array([m.moliere_mm for m in mats])
    ec = np.array([m.critical_mev for m in mats])
    z = np.array([m.z for m in mats])
    mass = d * np.array([m.density_g_cm3 for m in mats])
    active = np.array([bool(s.active) for s in slabs])
    x0_eff = d.sum() / np.sum(d / x0)
    z_act = np.average(z[active], weights=mass[active]) if active.any() else np.average(z, weights=mass)
    z_pas = np.average(z[~active], weights=mass[~active]) if (~active).any() else z_act
    return StackConstants(
        x0_mm=float(x0_eff),
        moliere_mm=float(d.sum() / np.sum(d / rm)),
        critical_mev=float(x0_eff * np.sum(d * ec / x0) / d.sum()),
        z_eff=float(np.average(z, weights=mass)),
        sampling_frequency=float(x0_eff / d.sum()),
        e_hat=float(1.0 / (1.0 + 0.007 * (z_act - z_pas))),
    )


@dataclass(frozen=True, eq=False)
class FastSimDetector:
    """Depth slices, readout and effective constants of a calorimeter for FastSim.

    ``slice_edges_x0``: (S + 1,) float64 slice boundaries in X0 from the front face;
    ``slice_layer``: (S,) int64 readout layer of each slice, -1 = not recorded (dead material);
    ``slice_moliere_mm``: (S,) float64 local Moliere radius; ``constants``: effective constants of
    the main sampling block (the GFLASH parametrisation variables ``y = E / E_c`` and ``r / R_M``);
    ``source``: the full-simulation detector it was derived from.
    """

    name: str
    geometry: CylindricalReadout
    slice_edges_x0: np.ndarray
    slice_layer: np.ndarray
    slice_moliere_mm: np.ndarray
    constants: StackConstants
    source: Detector | None = None

    @property
    def x0_mm(self) -> float:
        return self.constants.x0_mm

    @property
    def moliere_mm(self) -> float:
        return self.constants.moliere_mm

    @property
    def critical_mev(self) -> float:
        return self.constants.critical_mev

    @property
    def z_eff(self) -> float:
        return self.constants.z_eff

    @property
    def depth_x0(self) -> float:
        return float(self.slice_edges_x0[-1])

    @cached_property
    def layer_span_x0(self) -> np.ndarray:
        """(L, 2) float64 first and last depth (X0) recorded by each readout layer (NaN if none)."""
        span = np.full((self.geometry.n_layers, 2), np.nan)
        for layer in range(self.geometry.n_layers):
            idx = np.flatnonzero(self.slice_layer == layer)
            if idx.size:
                span[layer] = self.slice_edges_x0[idx[0]], self.slice_edges_x0[idx[-1] + 1]
        return span

    @cached_property
    def layer_moliere_mm(self) -> np.ndarray:
        """(L,) float64 Moliere radius of the material each readout layer records (main block's if none)."""
        out = np.full(self.geometry.n_layers, self.constants.moliere_mm)
        rec = self.slice_layer >= 0
        out[self.slice_layer[rec]] = self.slice_moliere_mm[rec]
        return out

    @property
    def layer_centres_x0(self) -> np.ndarray:
        """(L,) float64 centre depth of each readout layer in X0 (0 for layers that record nothing)."""
        return np.nan_to_num(self.layer_span_x0.mean(axis=1), nan=0.0)

    def stack_summary(self) -> dict[str, float]:
        """Constants a parameter set depends on (stored with it and checked when it is used)."""
        c = self.constants
        return {"x0_mm": round(c.x0_mm, 6), "moliere_mm": round(c.moliere_mm, 6),
                "critical_mev": round(c.critical_mev, 6), "z_eff": round(c.z_eff, 4)}

    def __repr__(self) -> str:
        c = self.constants
        return (f"FastSimDetector({self.name!r}, {self.slice_layer.size} slices, {self.depth_x0:.2f} X0, "
                f"X0 {c.x0_mm:.3f} mm, R_M {c.moliere_mm:.3f} mm, E_c {c.critical_mev:.3f} MeV, "
                f"readout {self.geometry})")

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_fullsim(cls, detector: Detector, max_slice_x0: float = 1.0) -> "FastSimDetector":
        """Reduce a full-simulation :class:`~caloforge.fullsim.Detector` to FastSim slices."""
        where = f"detector {detector.name}"
        geometry = detector.geometry
        active_layer = iter(detector.readout_layer_of_active.tolist())
        edges, layers, moliere = [0.0], [], []
        best_block, best_x0 = None, -1.0
        for block in detector.stack:
            consts = period_constants(block.slabs, where)
            period_x0 = sum(s.thickness_mm / _material(s.material, where).x0_mm for s in block.slabs)
            n_active = sum(s.active for s in block.slabs)
            if n_active and block.repeat * period_x0 > best_x0:
                best_block, best_x0 = block, block.repeat * period_x0
            for _ in range(block.repeat):
                layer = -1
                for _ in range(n_active):
                    layer = next(active_layer)
                if layers and layers[-1] == layer and moliere[-1] == consts.moliere_mm:
                    edges[-1] += period_x0  # extend the current run
                else:
                    edges.append(edges[-1] + period_x0)
                    layers.append(layer)
                    moliere.append(consts.moliere_mm)
        if best_block is None:
            raise ConfigError(f"{where}: the stack has no active slab")
        # split runs into slices of at most max_slice_x0
        s_edges, s_layer, s_rm = [0.0], [], []
        for lo, hi, layer, rm in zip(edges[:-1], edges[1:], layers, moliere):
            k = max(int(np.ceil((hi - lo) / max_slice_x0 - 1e-9)), 1)
            s_edges.extend(np.linspace(lo, hi, k + 1)[1:].tolist())
            s_layer.extend([layer] * k)
            s_rm.extend([rm] * k)
        n_r = np.array([lay.n_r for lay in geometry.layers])
        s_layer_arr = np.array(s_layer, dtype=np.int64)
        s_layer_arr[(s_layer_arr >= 0) & (n_r[np.maximum(s_layer_arr, 0)] == 0)] = -1
        return cls(detector.name, geometry, np.array(s_edges), s_layer_arr, np.array(s_rm),
                   period_constants(best_block.slabs, where), detector)


def get_detector(spec: str | Path | Detector) -> FastSimDetector:
    """FastSim view of a detector preset (``ds2``, ``ds3``, ``ds1-photons-like``, ``pbwo4``), a
    detector YAML file (the :mod:`caloforge.fullsim` format) or a :class:`~caloforge.fullsim.Detector`."""
    return FastSimDetector.from_fullsim(load_detector(spec))
