"""Hybrid simulation: classical FastSim showers refined by a trained diffusion model.

SDEdit-style refinement (Meng et al., arXiv:2108.01073): :func:`refine_showers` (arrays),
:func:`refine_file` (behind ``caloforge refine``), and the latent-space primitive :func:`sdedit`.
"""

from caloforge.hybrid.refine import LAYER_MODES, RefineResult, refine_batch, refine_file, refine_showers, resolve_sigma0
from caloforge.hybrid.sdedit import sdedit, sdedit_sigmas, start_sigma

__all__ = [
    "LAYER_MODES",
    "RefineResult",
    "refine_batch",
    "refine_file",
    "refine_showers",
    "resolve_sigma0",
    "sdedit",
    "sdedit_sigmas",
    "start_sigma",
]
