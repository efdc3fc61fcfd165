"""Neural networks: the cylindrical U-Net, GLaM geometry maps and the layer-energy MLP."""

from caloforge.nn.cylinder import CircularConv2d, FiLMResBlock, circular_pad
from caloforge.nn.embedding import ConditionEmbedding, FourierFeatures
from caloforge.nn.glam import GLaM, RegularGrid, overlap_matrix
from caloforge.nn.layer_mlp import LayerMLP, LayerMLPConfig
from caloforge.nn.unet import CylinderUNet, UNetConfig

__all__ = [
    "CircularConv2d",
    "ConditionEmbedding",
    "CylinderUNet",
    "FiLMResBlock",
    "FourierFeatures",
    "GLaM",
    "LayerMLP",
    "LayerMLPConfig",
    "RegularGrid",
    "UNetConfig",
    "circular_pad",
    "overlap_matrix",
]
