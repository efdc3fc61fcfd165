"""Triton model repository for an exported sampler graph.

Layout written by :func:`write_triton_model` (one model; several may share a repository)::

    REPO/<name>/config.pbtxt      # python backend, max_batch_size, dynamic batching, I/O names + shapes
    REPO/<name>/1/model.onnx      # the checked ONNX export of the graph
    REPO/<name>/1/metadata.json   # geometry, units, voxel order, sampler, steps, check result
    REPO/<name>/1/model.py        # caloforge.deploy.triton_model: validation + ONNX Runtime

The bundled ``tritonserver`` of ``nvidia-pytriton`` ships only the Python backend, so the ONNX
graph runs in ONNX Runtime inside it (see docs/deployment.md).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from caloforge.deploy.export import DEFAULT_OPSET, DEFAULT_TOLERANCE, staging_dir, write_export_dir
from caloforge.deploy.graph import INPUT_NAMES, OUTPUT_NAMES, SamplerGraph
from caloforge.errors import CaloforgeError
from caloforge.io import check_output_path

__all__ = ["TritonModelOptions", "render_config", "write_triton_model"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class TritonModelOptions:
    """Serving options of one Triton model.

    ``max_batch_size``: largest batch (showers) one request or one formed batch may hold;
    ``dynamic_batching``: let Triton merge concurrent requests (waiting at most ``max_queue_delay_us``);
    ``instances``: model instances (each a process with its own ONNX Runtime session);
    ``intra_op_threads``: ONNX Runtime threads per instance (0 = one per core).
    """

    name: str = "caloforge"
    max_batch_size: int = 128
    dynamic_batching: bool = True
    max_queue_delay_us: int = 1000
    instances: int = 1
    intra_op_threads: int = 0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise CaloforgeError(f"Triton model name {self.name!r}: use letters, digits, '_', '-', '.' only")
        if self.max_batch_size < 1:
            raise CaloforgeError(f"max batch size must be >= 1, got {self.max_batch_size}")
        if self.instances < 1 or self.intra_op_threads < 0 or self.max_queue_delay_us < 0:
            raise CaloforgeError("instances must be >= 1, intra-op threads and queue delay >= 0")


def _pbtxt_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(options: TritonModelOptions, noise_parts: tuple[int, ...], n_voxels: int,
                  metadata: dict[str, Any] | None = None) -> str:
    """Text of ``config.pbtxt`` (dims exclude the batch dimension, which Triton adds).

    Parameters for clients (returned by the model-config request): ``noise_parts`` (comma-separated
    sizes: how to draw the noise) and ``caloforge_metadata`` (the export metadata as JSON).
    """
    lines = [
        f'name: "{options.name}"',
        'backend: "python"',
        f"max_batch_size: {options.max_batch_size}",
        "input [",
        f'  {{ name: "{INPUT_NAMES[0]}" data_type: TYPE_FP32 dims: [ 1 ] }},',
        f'  {{ name: "{INPUT_NAMES[1]}" data_type: TYPE_FP32 dims: [ {sum(noise_parts)} ] }}',
        "]",
        "output [",
        f'  {{ name: "{OUTPUT_NAMES[0]}" data_type: TYPE_FP32 dims: [ {n_voxels} ] }}',
        "]",
        f"instance_group [ {{ count: {options.instances} kind: KIND_CPU }} ]",
        "parameters [",
        f'  {{ key: "intra_op_threads" value: {{ string_value: "{options.intra_op_threads}" }} }},',
        f'  {{ key: "noise_parts" value: {{ string_value: "{",".join(str(int(p)) for p in noise_parts)}" }} }},',
        f'  {{ key: "caloforge_metadata" value: {{ string_value: {_pbtxt_string(json.dumps(metadata or {}))} }} }}',
        "]",
    ]
    if options.dynamic_batching:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {options.max_queue_delay_us} }}")
    return "\n".join(lines) + "\n"


def write_triton_model(graph: SamplerGraph, repository: str | Path, options: TritonModelOptions | None = None, *,
                       overwrite: bool = False, opset: int = DEFAULT_OPSET,
                       tolerance: float = DEFAULT_TOLERANCE,
                       metadata: dict[str, Any] | None = None, check_seed: int = 1) -> tuple[Path, dict[str, Any]]:
    """Write ``graph`` as model ``options.name`` into Triton ``repository`` (created if needed), atomically.

    Returns the model folder and its metadata (including the ONNX Runtime check against PyTorch).
    """
    options = options or TritonModelOptions()
    repository = Path(repository)
    if repository.exists() and not repository.is_dir():
        raise CaloforgeError(f"{repository}: exists and is not a folder (a Triton repository is a folder)")
    target = check_output_path(repository / options.name, overwrite)
    tmp = staging_dir(repository, options.name)
    try:
        serving = {"triton": {"model_name": options.name, "max_batch_size": options.max_batch_size,
                              "dynamic_batching": options.dynamic_batching,
                              "max_queue_delay_us": options.max_queue_delay_us, "instances": options.instances,
                              "intra_op_threads": options.intra_op_threads}}
        version_dir, meta = write_export_dir(graph, tmp / "1", "onnx", opset=opset, tolerance=tolerance,
                                             metadata={**(metadata or {}), **serving}, check_seed=check_seed)
        source = resources.files("caloforge.deploy").joinpath("triton_model.py")
        (version_dir / "model.py").write_text(source.read_text())
        (tmp / "config.pbtxt").write_text(render_config(options, graph.spec.noise_parts, graph.spec.n_voxels, meta))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target, meta
