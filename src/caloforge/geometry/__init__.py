"""Cylindrical calorimeter readouts (CaloChallenge voxelisation) and their presets."""

from caloforge.geometry.binning_xml import load_binning_xml, write_binning_xml
from caloforge.geometry.presets import BINNING_FILES, binning_path, cell_threshold_mev, get_geometry
from caloforge.geometry.readout import CylindricalReadout, LayerBinning

__all__ = [
    "BINNING_FILES",
    "CylindricalReadout",
    "LayerBinning",
    "binning_path",
    "cell_threshold_mev",
    "get_geometry",
    "load_binning_xml",
    "write_binning_xml",
]
