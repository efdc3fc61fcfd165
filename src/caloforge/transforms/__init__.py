"""Invertible preprocessing fitted on training data, stored as module buffers in checkpoints."""

from caloforge.transforms.base import FittedModule, inverse_logit, logit
from caloforge.transforms.layers import EnergyScaler, LayerEnergyPreprocessor
from caloforge.transforms.voxels import VoxelPreprocessor

__all__ = [
    "EnergyScaler",
    "FittedModule",
    "LayerEnergyPreprocessor",
    "VoxelPreprocessor",
    "inverse_logit",
    "logit",
]
