"""The Geant4 application run inside each worker process (imports geant4_pybind; never import it elsewhere).

Geometry: slabs are coaxial discs along +z in a vacuum (or ``world_material``) cylinder. Inside every
active slab mapped to readout layer ``l`` the readout is built *as volumes*: one ring placement per
radial bin (copy number = r bin) holding a ``kPhi`` replica of ``n_alpha`` wedges (copy number =
alpha bin, wedge ``a`` covers ``[-pi + a 2pi/n, -pi + (a+1) 2pi/n)`` = the caloforge convention);
the active slab's own copy number is ``l``. The wedges are sensitive to one
``G4MultiFunctionalDetector`` with a ``G4PSEnergyDeposit3D`` primitive scorer (depths: layer 2,
alpha 0, r 1), so Geant4 itself (C++) sums the deposits per cell into a hits map keyed by
``(l * A_max + a) * R_max + r`` - the padded-grid index of :class:`~caloforge.geometry.CylindricalReadout`.
Python only runs once per event (primary generation, reading the hits map), never per step.

Physics: ``G4EmStandardPhysics`` (option 0) with the default production cuts.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

import geant4_pybind as g4

from caloforge.errors import ConfigError
from caloforge.fullsim.detector import Detector

__all__ = ["Geant4Simulation", "geant4_version"]

_MM = g4.mm
_FRONT_GAP_MM = 1e-3  # primary starts this far in front of the first slab (in the world material)


def geant4_version() -> str:
    """``"geant4 11.4.1"`` from the linked Geant4 (``G4VERSION_NUMBER`` = 1141)."""
    n = int(g4.G4VERSION_NUMBER)
    return f"geant4 {n // 100}.{(n // 10) % 10}.{n % 10}"


def _find_material(name: str, allowed_z: set[int] | None) -> Any:
    material = g4.G4NistManager.Instance().FindOrBuildMaterial(name)
    if material is None:
        raise ConfigError(f"material {name!r} is not a Geant4 NIST material (e.g. G4_W, G4_Si, G4_Pb, G4_lAr, "
                          "G4_PbWO4, G4_Fe, G4_Cu, G4_PLASTIC_SC_VINYLTOLUENE)")
    if allowed_z is not None:
        missing = sorted({int(e.GetZasInt()) for e in material.GetElementVector()} - allowed_z)
        if missing:
            raise ConfigError(
                f"material {name!r} contains element(s) Z = {missing} without Geant4 EM data tables in G4LEDATA; "
                f"available Z: {sorted(allowed_z)} (install the full Geant4 data to use other elements)"
            )
    return material


class _Construction(g4.G4VUserDetectorConstruction):
    def __init__(self, detector: Detector, allowed_z: set[int] | None) -> None:
        super().__init__()
        self.detector = detector
        self.materials = {name: _find_material(name, allowed_z) for name in detector.materials}
        self.keep: list[Any] = []  # Geant4 objects must outlive the run
        self.cells: list[Any] = []
        self.front_z_mm = -0.5 * detector.depth_mm

    def _tubs(self, name: str, rmin: float, rmax: float, half_z: float, sphi: float = 0.0,
              dphi: float = 2 * math.pi) -> Any:
        solid = g4.G4Tubs(name, rmin * _MM, rmax * _MM, half_z * _MM, sphi, dphi)
        self.keep.append(solid)
        return solid

    def _logical(self, solid: Any, material: str, name: str) -> Any:
        lv = g4.G4LogicalVolume(solid, self.materials[material], name)
        self.keep.append(lv)
        return lv

    def _place(self, lv: Any, mother: Any, name: str, copy: int, z_mm: float = 0.0) -> None:
        self.keep.append(g4.G4PVPlacement(None, g4.G4ThreeVector(0, 0, z_mm * _MM), lv, name, mother, False, copy))

    def _active_slab(self, material: str, thickness: float, layer: int) -> Any:
        """Active disc of readout layer ``layer`` with its rings and alpha wedges inside."""
        half = 0.5 * thickness
        slab = self._logical(self._tubs(f"active{layer}", 0.0, self.detector.radius_mm, half), material, f"active{layer}")
        binning = self.detector.geometry.layers[layer]
        edges, n_alpha = binning.r_edges, binning.n_alpha
        dphi = 2 * math.pi / n_alpha
        for r in range(binning.n_r):
            name = f"ring{layer}_{r}"
            ring = self._logical(self._tubs(name, edges[r], edges[r + 1], half), material, name)
            self._place(ring, slab, name, r)
            if n_alpha > 1:
                cell = self._logical(self._tubs(name + "_cell", edges[r], edges[r + 1], half, -math.pi, dphi),
                                     material, name + "_cell")
                self.keep.append(g4.G4PVReplica(name + "_cell", cell, ring, g4.kPhi, n_alpha, dphi, -math.pi))
            else:
                cell = self._logical(self._tubs(name + "_cell", edges[r], edges[r + 1], half), material, name + "_cell")
                self._place(cell, ring, name + "_cell", 0)
            self.cells.append(cell)
        return slab

    def Construct(self) -> Any:
        det = self.detector
        half_depth = 0.5 * det.depth_mm
        world_solid = self._tubs("world", 0.0, 1.01 * det.radius_mm, half_depth + 10 * _FRONT_GAP_MM + 1.0)
        world = self._logical(world_solid, det.world_material, "world")
        world_pv = g4.G4PVPlacement(None, g4.G4ThreeVector(), world, "world", None, False, 0)
        self.keep.append(world_pv)
        passive: dict[tuple[str, float], Any] = {}
        active: dict[tuple[str, float, int], Any] = {}
        layer_of_active = det.readout_layer_of_active
        z, i_active = -half_depth, 0
        for i, slab in enumerate(det.slabs):
            centre = z + 0.5 * slab.thickness_mm
            if slab.active:
                layer = int(layer_of_active[i_active])
                key = (slab.material, slab.thickness_mm, layer)
                if key not in active:
                    active[key] = self._active_slab(slab.material, slab.thickness_mm, layer)
                self._place(active[key], world, f"active{layer}", layer, centre)
                i_active += 1
            else:
                key2 = (slab.material, slab.thickness_mm)
                if key2 not in passive:
                    passive[key2] = self._logical(self._tubs(f"passive{len(passive)}", 0.0, det.radius_mm,
                                                             0.5 * slab.thickness_mm), slab.material,
                                                  f"passive{len(passive)}")
                self._place(passive[key2], world, "passive", i, centre)
            z += slab.thickness_mm
        return world_pv

    def ConstructSDandField(self) -> None:
        geo = self.detector.geometry
        n_layers, a_max, r_max = geo.grid_shape
        mfd = g4.G4MultiFunctionalDetector("calo")
        g4.G4SDManager.GetSDMpointer().AddNewDetector(mfd)
        scorer = g4.G4PSEnergyDeposit3D("edep", n_layers, a_max, r_max, 2, 0, 1)
        mfd.RegisterPrimitive(scorer)
        for cell in self.cells:
            self.SetSensitiveDetector(cell, mfd)
        self.keep += [mfd, scorer]


class _PhysicsList(g4.G4VModularPhysicsList):
    def __init__(self) -> None:
        super().__init__()
        self.RegisterPhysics(g4.G4EmStandardPhysics())


class _Primary(g4.G4VUserPrimaryGeneratorAction):
    """Fires one particle per event; reseeds the engine per event so each shower depends on its seed only."""

    def __init__(self, particle: str, front_z_mm: float, offset_mm: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__()
        self.gun = g4.G4ParticleGun(1)
        self.gun.SetParticleDefinition(g4.G4ParticleTable.GetParticleTable().FindParticle(particle))
        self.gun.SetParticleMomentumDirection(g4.G4ThreeVector(0, 0, 1))
        x, y = offset_mm
        self.gun.SetParticlePosition(g4.G4ThreeVector(x * _MM, y * _MM, (front_z_mm - _FRONT_GAP_MM) * _MM))
        self.energies_mev: np.ndarray = np.zeros(0)
        self.seeds: np.ndarray = np.zeros((0, 2), np.int64)

    def GeneratePrimaries(self, event: Any) -> None:
        i = event.GetEventID()
        g4.HepRandom.setTheSeeds([int(self.seeds[i, 0]), int(self.seeds[i, 1]), 0])
        self.gun.SetParticleEnergy(float(self.energies_mev[i]) * g4.MeV)
        self.gun.GeneratePrimaryVertex(event)


class _Collector(g4.G4UserEventAction):
    """Reads the scorer's hits map once per event into a dense (n, n_grid) array; times each event."""

    def __init__(self, n_grid: int) -> None:
        super().__init__()
        self.n_grid = n_grid
        self.collection_id = -1
        self.deposits = np.zeros((0, n_grid))
        self.cpu_s = np.zeros(0)
        self._t0 = 0.0

    def reset(self, n: int) -> None:
        self.deposits = np.zeros((n, self.n_grid))
        self.cpu_s = np.zeros(n)

    def BeginOfEventAction(self, event: Any) -> None:
        self._t0 = time.process_time()

    def EndOfEventAction(self, event: Any) -> None:
        if self.collection_id < 0:
            self.collection_id = g4.G4SDManager.GetSDMpointer().GetCollectionID("calo/edep")
        hits = event.GetHCofThisEvent().GetHC(self.collection_id)
        i = event.GetEventID()
        row = self.deposits[i]
        for key, value in hits:
            row[key] += value
        self.cpu_s[i] = time.process_time() - self._t0


class Geant4Simulation:
    """One Geant4 run manager with the detector built; :meth:`run` simulates a batch of showers.

    Only one can exist per process (Geant4's run manager is a singleton): create it in a worker.
    ``allowed_z``: atomic numbers with data tables (None = no check); ``offset_mm``: transverse
    (x, y) position of the beam (default on the axis), direction always +z.
    """

    def __init__(self, detector: Detector, particle: str, allowed_z: set[int] | None = None,
                 offset_mm: tuple[float, float] = (0.0, 0.0)) -> None:
        self.detector = detector
        geo = detector.geometry
        self.n_grid = int(np.prod(geo.grid_shape))
        self.grid_index = geo.grid_index
        self.calibration = detector.calibration[geo.voxel_layer]  # (V,) per-voxel factor
        self.run_manager = g4.G4RunManagerFactory.CreateRunManager(g4.G4RunManagerType.Serial)
        self.construction = _Construction(detector, allowed_z)  # raises ConfigError on bad materials
        self.physics = _PhysicsList()
        self.run_manager.SetUserInitialization(self.construction)
        self.run_manager.SetUserInitialization(self.physics)
        ui = g4.G4UImanager.GetUIpointer()
        for command in ("/control/verbose 0", "/run/verbose 0", "/event/verbose 0", "/tracking/verbose 0",
                        "/process/verbose 0", "/process/em/verbose 0"):
            ui.ApplyCommand(command)
        self.run_manager.Initialize()
        self.primary = _Primary(particle, self.construction.front_z_mm, offset_mm)
        self.collector = _Collector(self.n_grid)
        self.run_manager.SetUserAction(self.primary)
        self.run_manager.SetUserAction(self.collector)

    def run(self, energies_mev: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Simulate one shower per energy.

        ``energies_mev``: (n,) incident energies, MeV; ``seeds``: (n, 2) int Geant4 engine seeds.
        Returns ``showers`` (n, V) float32 voxel energies in MeV (calibrated) and ``cpu_s`` (n,)
        float64 CPU seconds per shower (Geant4 event processing + reading the hits map).
        """
        n = len(energies_mev)
        self.primary.energies_mev = np.asarray(energies_mev, dtype=np.float64)
        self.primary.seeds = np.asarray(seeds, dtype=np.int64).reshape(n, 2)
        self.collector.reset(n)
        self.run_manager.BeamOn(n)
        showers = self.collector.deposits[:, self.grid_index] * self.calibration
        return showers.astype(np.float32), self.collector.cpu_s.copy()
