"""Named readout geometries: the four CaloChallenge binnings shipped as package data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from caloforge.errors import CaloforgeError
from caloforge.geometry.binning_xml import load_binning_xml
from caloforge.geometry.readout import CylindricalReadout

#: preset name -> binning XML file shipped in ``caloforge/data/binning``
BINNING_FILES = {
    "ds1-photons": "binning_dataset_1_photons.xml",
    "ds1-pions": "binning_dataset_1_pions.xml",
    "ds2": "binning_dataset_2.xml",
    "ds3": "binning_dataset_3.xml",
}

#: CaloChallenge cell threshold in MeV applied before evaluation, per preset
CELL_THRESHOLD_MEV = {"ds1-photons": 1.0, "ds1-pions": 1.0, "ds2": 15.15e-3, "ds3": 15.15e-3}


def binning_path(name: str) -> Path:
    """Path of the shipped binning XML of preset ``name``."""
    if name not in BINNING_FILES:
        raise CaloforgeError(f"unknown geometry {name!r}; presets: {sorted(BINNING_FILES)} (or a binning .xml file)")
    return Path(str(resources.files("caloforge") / "data" / "binning" / BINNING_FILES[name]))


def get_geometry(name_or_path: str | Path) -> CylindricalReadout:
    """A preset name (``ds1-photons``, ``ds1-pions``, ``ds2``, ``ds3``) or a binning XML path."""
    text = str(name_or_path)
    if text in BINNING_FILES:
        return load_binning_xml(binning_path(text), name=text)
    if text.endswith(".xml"):
        return load_binning_xml(Path(text))
    raise CaloforgeError(f"unknown geometry {text!r}; presets: {sorted(BINNING_FILES)} (or a binning .xml file)")


def cell_threshold_mev(geometry: CylindricalReadout) -> float:
    """The CaloChallenge cell threshold for ``geometry`` (1 MeV for ds1-like, else 15.15 keV)."""
    if geometry.name in CELL_THRESHOLD_MEV:
        return CELL_THRESHOLD_MEV[geometry.name]
    return 1.0 if geometry.name.startswith("ds1") else 15.15e-3
