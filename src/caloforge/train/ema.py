"""Exponential moving average of model weights (buffers are copied, not averaged)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """``shadow = decay * shadow + (1 - decay) * weights`` after every optimiser step.

    The effective decay is warmed up as ``min(decay, (1 + step) / (10 + step))`` so early
    averages are not dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.step = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.step += 1
        decay = min(self.decay, (1 + self.step) / (10 + self.step))
        for shadow, param in zip(self.model.parameters(), model.parameters()):
            shadow.lerp_(param.detach(), 1.0 - decay)
        for shadow, buf in zip(self.model.buffers(), model.buffers()):
            shadow.copy_(buf)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "step": self.step, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.step = int(state["step"])
        self.model.load_state_dict(state["model"])
