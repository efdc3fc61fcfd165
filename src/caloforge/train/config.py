"""Training configuration (YAML -> typed dataclasses; unknown keys are errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from caloforge.config import load_config
from caloforge.diffusion.model import ModelConfig
from caloforge.errors import ConfigError

__all__ = ["TrainConfig", "load_train_config"]


@dataclass
class TrainConfig:
    """Everything ``caloforge train`` needs besides the data files.

    ``geometry``: preset name or binning XML; ``model``: :class:`ModelConfig`;
    ``batch_size``: voxel-model showers per step; ``layer_batch_size``: layer-model vectors per
    step (drawn independently; the layer model is cheap and needs many samples);
    ``epochs``: passes over the training set; ``max_minutes``: stop after this wall time (the
    learning-rate schedule still spans ``epochs``); ``lr``, ``lr_min``: AdamW learning rate,
    cosine-decayed to ``lr_min`` after ``warmup_steps`` of linear warm-up; ``ema_decay``: EMA of
    the weights used for validation and saved as the model; ``patience``: early stopping after
    this many epochs in which neither network (voxel, layer) improved its validation loss
    (0 = off); ``val_fraction``: split of the
    training file used for validation when no ``--val`` file is given; ``val_max_showers``: cap on
    validation showers per epoch; ``sigma_sampling``: training noise levels (``lognormal``
    (EDM) or ``cosine``); ``threads``: torch CPU threads (1 is fastest on a busy machine).
    """

    geometry: str = "ds2"
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 64
    layer_batch_size: int = 512
    epochs: int = 40
    max_minutes: float | None = None
    lr: float = 2e-3
    lr_min: float = 1e-4
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    patience: int = 10
    val_fraction: float = 0.1
    val_max_showers: int = 1000
    sigma_sampling: Literal["lognormal", "cosine"] = "lognormal"
    p_mean: float = -1.2
    p_std: float = 1.2
    max_train_showers: int | None = None
    threads: int | None = 1

    def __post_init__(self) -> None:
        checks = [
            (self.batch_size > 0, "batch_size must be > 0"),
            (self.layer_batch_size > 0, "layer_batch_size must be > 0"),
            (self.epochs > 0, "epochs must be > 0"),
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (0 < self.val_fraction < 1, "val_fraction must be in (0, 1)"),
            (self.patience >= 0, "patience must be >= 0"),
            (self.max_minutes is None or self.max_minutes > 0, "max_minutes must be > 0"),
            (self.threads is None or self.threads > 0, "threads must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def load_train_config(path: str | Path) -> TrainConfig:
    """Load and check a training YAML file."""
    return load_config(TrainConfig, path)
