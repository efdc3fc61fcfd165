"""Shared pieces of the fitted, invertible transforms: the fitted-state check and the logit map.

Transforms follow the scikit-learn estimator pattern (``fit`` sets state and returns ``self``;
``transform`` / ``inverse_transform`` check it), but are :class:`torch.nn.Module` objects whose
fitted constants are *buffers*: they are saved in checkpoints with the weights and travel into
ONNX exports with the network.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FittedModule", "logit", "inverse_logit"]


def logit(x: torch.Tensor, delta: float) -> torch.Tensor:
    """``log(u / (1 - u))`` with ``u = delta + (1 - 2 delta) x`` for ``x`` in [0, 1].

    The shift ``delta`` keeps exact zeros finite (CaloDiffusion, arXiv:2308.03876, Sec. III.A).
    """
    u = delta + (1.0 - 2.0 * delta) * x
    return torch.log(u) - torch.log1p(-u)


def inverse_logit(z: torch.Tensor, delta: float) -> torch.Tensor:
    """Exact inverse of :func:`logit`, clamped to [0, 1]."""
    return ((torch.sigmoid(z) - delta) / (1.0 - 2.0 * delta)).clamp(0.0, 1.0)


class FittedModule(nn.Module):
    """Base class: a ``fitted_`` buffer (0/1) and :meth:`check_fitted`."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("fitted_", torch.zeros((), dtype=torch.float32))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted_.item() > 0)

    def _mark_fitted(self) -> None:
        self.fitted_.fill_(1.0)

    def check_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
