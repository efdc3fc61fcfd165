"""Hybrid simulation: classical FastSim showers refined by a trained network.

Two refiners: SDEdit with the ordinary diffusion model (Meng et al., arXiv:2108.01073;
:func:`sdedit`) and cold diffusion, a Brownian-bridge refiner trained to carry FastSim showers to
Geant4 ones (:class:`ShowerBridge`, trained by :func:`train_bridge` behind
``caloforge train-refiner``). :func:`refine_showers` (arrays) and :func:`refine_file` (behind
``caloforge refine``) run either.
"""

from caloforge.hybrid.bridge import BridgeConfig, ShowerBridge, load_bridge_file, save_bridge_file
from caloforge.hybrid.bridge_train import BridgeTrainConfig, load_bridge_train_config, train_bridge
from caloforge.hybrid.refine import (
    LAYER_MODES,
    RefineResult,
    load_refiner,
    refine_batch,
    refine_file,
    refine_showers,
    resolve_sigma0,
)
from caloforge.hybrid.sdedit import sdedit, sdedit_sigmas, start_sigma

__all__ = [
    "LAYER_MODES",
    "BridgeConfig",
    "BridgeTrainConfig",
    "RefineResult",
    "ShowerBridge",
    "load_bridge_file",
    "load_bridge_train_config",
    "load_refiner",
    "refine_batch",
    "refine_file",
    "refine_showers",
    "resolve_sigma0",
    "save_bridge_file",
    "sdedit",
    "sdedit_sigmas",
    "start_sigma",
    "train_bridge",
]
