"""Arithmetic precision of network evaluations during generation (issue 5, fast sampling).

``fp32`` (default) runs everything in float32. ``bf16`` runs the convolutions and matrix
products of both denoisers in bfloat16 through :func:`torch.autocast` (CPU), keeping the
preprocessing, sampler arithmetic and outputs in float32. Measured on ds2 (docs/fast_sampling.md):
about 1.3x cheaper per voxel-network evaluation on a CPU with AVX512-BF16, with showers within
~2 % RMS of the float32 ones (total energies within 0.1 %) and unchanged evaluation metrics. On
CPUs without native bf16 it is slower: keep ``fp32`` there.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from caloforge.errors import CaloforgeError

__all__ = ["PRECISIONS", "check_precision", "inference_precision"]

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> None:
    """Raise a one-line :class:`CaloforgeError` for an unknown precision name."""
    if precision not in PRECISIONS:
        raise CaloforgeError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")


@contextlib.contextmanager
def inference_precision(precision: str = "fp32") -> Iterator[None]:
    """Context in which network evaluations run at ``precision`` (``fp32`` | ``bf16``)."""
    check_precision(precision)
    if precision == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield
