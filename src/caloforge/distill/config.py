"""Consistency-distillation configuration (YAML -> typed dataclass; unknown keys are errors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from caloforge.config import load_config
from caloforge.errors import ConfigError

__all__ = ["DistillConfig", "load_distill_config"]


@dataclass
class DistillConfig:
    """Everything ``caloforge distill`` needs besides the teacher and the data files.

    Discretisation and targets follow Song et al. (arXiv:2303.01469, Alg. 2, App. C):

    ``n_levels``: N Karras noise levels between ``sigma_min`` = 0.002 and ``sigma_max`` = 80
    (``rho``), the teacher takes one EDM Heun step between adjacent levels;
    ``target_decay``: mu of the target network ``theta^- <- mu theta^- + (1 - mu) theta``;
    ``ema_decay``: EMA of the student weights that is saved as the model;
    ``loss``: ``l2`` (mean squared difference per voxel) or ``pseudo_huber``
    (``sqrt(mse + c^2) - c``, Song & Dhariwal arXiv:2310.14189, with ``c = huber_c``);
    ``steps``: optimiser steps; ``max_minutes``: stop earlier after this wall time;
    ``batch_size``: showers per step; ``lr``: Adam learning rate after ``warmup_steps`` of linear
    warm-up (constant afterwards, as in the paper); ``val_every``: validate and write ``model.pt``
    every this many steps (and at the end); ``val_showers``: validation showers whose teacher ODE
    solutions (Heun over the same N levels, computed once) the student is compared with;
    ``max_train_showers``: cap on the training set; ``threads``: torch CPU threads (1 is fastest
    on a busy machine); ``shape_weight``: weight of the lateral-shape data term
    (:mod:`caloforge.distill.shape`: marginal MMD between the student's one-step samples and the
    real showers of the batch; 0 = plain consistency distillation); ``shape_steps``: the numbers
    of sampling steps whose samples the data term sees (one drawn per optimiser step; (1,) tunes
    one-step sampling); ``shape_features``: feature families of the data term (``radial``: mean
    and RMS radius per layer; ``alpha``: energy spread over the alpha bins of every ring;
    ``concentration``: how many voxels share each layer's energy).
    """

    n_levels: int = 18
    rho: float = 7.0
    target_decay: float = 0.95
    ema_decay: float = 0.995
    loss: Literal["l2", "pseudo_huber"] = "l2"
    huber_c: float = 0.00054
    steps: int = 2000
    max_minutes: float | None = None
    batch_size: int = 32
    lr: float = 1.0e-4
    warmup_steps: int = 20
    grad_clip: float = 1.0
    val_every: int = 100
    val_showers: int = 64
    max_train_showers: int | None = None
    threads: int | None = 1
    shape_weight: float = 0.0
    shape_steps: tuple[int, ...] = (1,)
    shape_features: tuple[str, ...] = ("radial",)

    def __post_init__(self) -> None:
        checks = [
            (self.n_levels >= 2, "n_levels must be >= 2"),
            (self.rho > 0, "rho must be > 0"),
            (0 <= self.target_decay < 1, "target_decay must be in [0, 1)"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (self.huber_c > 0, "huber_c must be > 0"),
            (self.steps > 0, "steps must be > 0"),
            (self.max_minutes is None or self.max_minutes > 0, "max_minutes must be > 0"),
            (self.batch_size > 0, "batch_size must be > 0"),
            (self.lr > 0, "lr must be > 0"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.val_every > 0, "val_every must be > 0"),
            (self.val_showers > 0, "val_showers must be > 0"),
            (self.max_train_showers is None or self.max_train_showers > 1, "max_train_showers must be > 1"),
            (self.threads is None or self.threads > 0, "threads must be > 0"),
            (self.shape_weight >= 0, "shape_weight must be >= 0"),
            (len(self.shape_steps) > 0 and all(int(k) >= 1 for k in self.shape_steps),
             "shape_steps must be a non-empty list of step counts >= 1"),
            (len(self.shape_features) > 0 and set(self.shape_features) <= {"radial", "alpha", "concentration"},
             "shape_features must be a non-empty list of 'radial', 'alpha', 'concentration'"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def load_distill_config(path: str | Path) -> DistillConfig:
    """Load and check a distillation YAML file."""
    return load_config(DistillConfig, path)
