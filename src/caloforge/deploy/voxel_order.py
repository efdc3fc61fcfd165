"""Voxel orders of exported models: the CaloChallenge order and the one Geant4's Par04 example uses.

CaloChallenge (caloforge's own convention): flat index ``(layer * A + alpha) * R + r`` (r fastest).
Par04 (Geant4 ``examples/extended/parameterisations/Par04``, ``Par04InferenceSetup::GetPositions``
loops r, then phi, then z): flat index ``(r * A + alpha) * L + layer`` (z = layer fastest).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from caloforge.errors import CaloforgeError
from caloforge.geometry import CylindricalReadout

__all__ = ["VOXEL_ORDERS", "VoxelOrder", "describe_voxel_order", "voxel_permutation"]

VoxelOrder = Literal["calochallenge", "par04"]
VOXEL_ORDERS: tuple[str, ...] = ("calochallenge", "par04")


def voxel_permutation(geometry: CylindricalReadout, order: str) -> np.ndarray | None:
    """Column permutation from CaloChallenge order to ``order``.

    Returns ``perm`` (V,) int64 such that ``showers_in_order = showers[:, perm]``, or ``None`` for
    the CaloChallenge order itself. Par04 order needs a regular readout (identical layers).
    """
    if order == "calochallenge":
        return None
    if order != "par04":
        raise CaloforgeError(f"unknown voxel order {order!r}; choose one of {list(VOXEL_ORDERS)}")
    if not geometry.is_regular:
        raise CaloforgeError(
            f"geometry {geometry.name}: Par04 voxel order needs identical layers (a regular readout); "
            "use --voxel-order calochallenge"
        )
    n_layers, n_alpha, n_r = geometry.grid_shape
    return np.arange(geometry.n_voxels, dtype=np.int64).reshape(n_layers, n_alpha, n_r).transpose(2, 1, 0).reshape(-1)


def describe_voxel_order(geometry: CylindricalReadout, order: str) -> str:
    """One-line formula of the flat voxel index in ``order`` (stored in export metadata)."""
    n_layers, n_alpha, n_r = geometry.grid_shape
    if order == "par04":
        return f"par04: index = (r * {n_alpha} + alpha) * {n_layers} + layer (layer = z fastest)"
    return f"calochallenge: index = (layer * {n_alpha} + alpha) * {n_r} + r (r fastest)"
