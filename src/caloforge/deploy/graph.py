"""The exportable graph: a complete fixed-step sampler as one ``torch.nn.Module``.

A :class:`SamplerGraph` maps ``(incident_energy (N, 1) float32 MeV, noise (N, D) float32)``
to ``showers (N, V) float32 MeV``. All randomness is the ``noise`` input (standard normal), so the
graph is a deterministic function that ONNX Runtime, libtorch and a Triton server reproduce exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from caloforge.deploy.voxel_order import describe_voxel_order, voxel_permutation
from caloforge.geometry import CylindricalReadout

__all__ = ["INPUT_NAMES", "OUTPUT_NAMES", "GraphSpec", "SamplerGraph", "batch_generator", "make_noise",
           "with_voxel_order"]

#: graph input names (ONNX, TorchScript metadata, Triton config)
INPUT_NAMES: tuple[str, str] = ("incident_energy", "noise")
#: graph output names
OUTPUT_NAMES: tuple[str] = ("showers",)


@dataclass(frozen=True)
class GraphSpec:
    """What an exported sampler graph computes (stored in the export metadata).

    ``noise_parts``: sizes of the parts of the per-shower standard-normal ``noise`` input (D = their
    sum), one per diffusion in the order the sampler uses them (see :func:`make_noise`);
    ``energy_range_mev``: incident energies the model was trained for (outside: extrapolation);
    ``voxel_order``: ``"calochallenge"`` or ``"par04"`` (see :mod:`caloforge.deploy.voxel_order`).
    """

    geometry: CylindricalReadout
    noise_parts: tuple[int, ...]
    sampler: str
    steps: int
    energy_range_mev: tuple[float, float]
    voxel_order: str = "calochallenge"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_voxels(self) -> int:
        return self.geometry.n_voxels

    @property
    def noise_size(self) -> int:
        """D: per-shower length of the ``noise`` input."""
        return int(sum(self.noise_parts))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (geometry, units, voxel order, sampler, input/output names and shapes)."""
        return {
            "geometry_name": self.geometry.name,
            "geometry": self.geometry.to_dict(),
            "n_voxels": self.n_voxels,
            "units": {"incident_energy": "MeV", "showers": "MeV"},
            "voxel_order": self.voxel_order,
            "voxel_order_formula": describe_voxel_order(self.geometry, self.voxel_order),
            "sampler": self.sampler,
            "steps": self.steps,
            "energy_range_mev": list(self.energy_range_mev),
            "inputs": [
                {"name": INPUT_NAMES[0], "shape": [-1, 1], "dtype": "float32", "unit": "MeV"},
                {"name": INPUT_NAMES[1], "shape": [-1, self.noise_size], "dtype": "float32",
                 "distribution": "standard normal, independent per element", "parts": list(self.noise_parts)},
            ],
            "outputs": [{"name": OUTPUT_NAMES[0], "shape": [-1, self.n_voxels], "dtype": "float32", "unit": "MeV"}],
            **self.extra,
        }


class SamplerGraph(torch.nn.Module):
    """Base of exportable samplers: ``forward(incident_energy (N, 1) MeV, noise (N, spec.noise_size))
    -> showers (N, V) MeV``. Subclasses implement :meth:`forward` with tensor operations only."""

    def __init__(self, spec: GraphSpec) -> None:
        super().__init__()
        self.spec = spec


class _Reordered(SamplerGraph):
    """``inner`` followed by a fixed column permutation of the showers."""

    def __init__(self, inner: SamplerGraph, perm: np.ndarray, order: str) -> None:
        super().__init__(replace(inner.spec, voxel_order=order))
        self.inner = inner
        self.register_buffer("perm", torch.as_tensor(perm, dtype=torch.int64), persistent=False)

    def forward(self, incident_energy: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.inner(incident_energy, noise).index_select(1, self.perm)


def with_voxel_order(graph: SamplerGraph, order: str) -> SamplerGraph:
    """``graph`` emitting showers in voxel ``order`` (``"calochallenge"`` returns ``graph`` itself)."""
    perm = voxel_permutation(graph.spec.geometry, order)
    return graph if perm is None else _Reordered(graph, perm, order)


def batch_generator(seed: int, start: int) -> torch.Generator:
    """The torch generator of the batch whose first shower has index ``start`` in a run with ``seed``.

    Same seeding as :func:`caloforge.generation.generate_showers` (``SeedSequence([seed, start])``),
    so remote and in-process generation with equal seed and batch size draw equal noise.
    """
    state = np.random.SeedSequence([int(seed), int(start)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def make_noise(noise_parts: Sequence[int], n: int, seed: int, start: int = 0) -> np.ndarray:
    """Packed standard-normal noise ``(n, sum(noise_parts))`` float32 for showers ``start .. start + n - 1``.

    Drawn part by part (``torch.randn((n, size))``) from :func:`batch_generator`, as the in-process
    sampler draws the start noise of each of its diffusions for one batch.
    """
    gen = batch_generator(seed, start)
    return torch.cat([torch.randn((n, int(size)), generator=gen) for size in noise_parts], dim=1).numpy()
