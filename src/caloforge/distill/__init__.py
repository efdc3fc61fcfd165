"""Few-step generation by consistency distillation (Song et al. arXiv:2303.01469).

``distill(config, teacher, data, out_dir)`` turns a trained diffusion model into a student that
samples in 1-4 network evaluations with ``sampler="consistency"``.
"""

from caloforge.distill.config import DistillConfig, load_distill_config
from caloforge.distill.loop import DISTILL_STATE_FORMAT, DistillResult, distill, is_distilled, teacher_ode_solution
from caloforge.distill.loss import ConsistencyDraw, consistency_loss, distillation_sigmas, draw, heun_step

__all__ = [
    "DISTILL_STATE_FORMAT",
    "ConsistencyDraw",
    "DistillConfig",
    "DistillResult",
    "consistency_loss",
    "distill",
    "distillation_sigmas",
    "draw",
    "heun_step",
    "is_distilled",
    "load_distill_config",
    "teacher_ode_solution",
]
