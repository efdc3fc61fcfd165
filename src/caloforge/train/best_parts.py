"""Best-validation weights kept separately for each independently trained part of the model.

The voxel network and the layer-energy network share nothing but the training loop: each has its
own loss and validation loss, and with small training sets the small layer-energy MLP starts to
overfit long before the voxel U-Net stops improving. Choosing one "best epoch" by the sum of the
two losses would then either freeze a still-improving voxel model or keep an overfitted layer
model. :class:`BestParts` keeps, per part, the EMA weights of the epoch with that part's lowest
validation loss, and :meth:`BestParts.compose` assembles ``model.pt`` from them.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

__all__ = ["PARTS", "BestParts"]

#: part name -> prefix of its parameters and buffers in the model's state dict
PARTS = {"voxel": "voxel_denoiser.", "layer": "layer_denoiser."}


class BestParts:
    """Per part (:data:`PARTS`): lowest validation loss so far, its epoch and weights."""

    def __init__(self) -> None:
        self.loss = {part: math.inf for part in PARTS}
        self.epoch = {part: 0 for part in PARTS}
        self.weights: dict[str, dict[str, torch.Tensor]] = {}

    def update(self, model: nn.Module, losses: dict[str, float], epoch: int) -> bool:
        """Keep the weights of each part whose loss in ``losses`` improved; True if any did."""
        improved = False
        state = None
        for part, loss in losses.items():
            if loss < self.loss[part]:
                state = state if state is not None else model.state_dict()
                prefix = PARTS[part]
                self.weights[part] = {k: v.detach().cpu().clone() for k, v in state.items() if k.startswith(prefix)}
                self.loss[part], self.epoch[part], improved = float(loss), epoch, True
        return improved

    @property
    def total_loss(self) -> float:
        return sum(loss for loss in self.loss.values() if math.isfinite(loss))

    def compose(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` with each part's best weights loaded (parts never seen stay as they are)."""
        out = copy.deepcopy(model)
        state = out.state_dict()
        for weights in self.weights.values():
            state.update(weights)
        out.load_state_dict(state)
        return out

    def state_dict(self) -> dict:
        return {"loss": dict(self.loss), "epoch": dict(self.epoch), "weights": self.weights}

    def load_state_dict(self, state: dict) -> None:
        self.loss.update(state["loss"])
        self.epoch.update(state["epoch"])
        self.weights = dict(state["weights"])
