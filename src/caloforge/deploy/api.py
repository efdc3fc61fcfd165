"""``caloforge export`` as one library call: checkpoint -> checked ONNX / TorchScript file or Triton repository."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from caloforge.config import save_config
from caloforge.deploy.export import DEFAULT_OPSET, DEFAULT_TOLERANCE, write_export_dir
from caloforge.deploy.graph import with_voxel_order
from caloforge.deploy.model_graph import build_sampler_graph
from caloforge.deploy.triton_repo import TritonModelOptions, write_triton_model
from caloforge.errors import CaloforgeError

__all__ = ["EXPORT_CONFIG_FILE", "ExportConfig", "ExportResult", "export_model"]

EXPORT_CONFIG_FILE = "export_config.yaml"
Format = Literal["onnx", "torchscript", "triton"]


@dataclass
class ExportConfig:
    """Resolved options of one export (written as ``export_config.yaml`` beside the exported files)."""

    model: str
    format: str
    out: str
    sampler: str | None = None
    steps: int | None = None
    layer_sampler: str | None = None
    layer_steps: int | None = None
    voxel_order: str = "calochallenge"
    opset: int = DEFAULT_OPSET
    tolerance: float = DEFAULT_TOLERANCE
    seed: int = 0
    triton: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and what it is: ``path`` (folder holding the model file, or the Triton
    model folder), ``metadata`` (as written to ``metadata.json``, including the numerical check)."""

    path: Path
    metadata: dict[str, Any]

    @property
    def max_abs_diff_mev(self) -> float:
        return float(self.metadata["check"]["max_abs_diff_mev"])


def export_model(model: str | Path, fmt: Format, out: str | Path, *, sampler: str | None = None,
                 steps: int | None = None, layer_sampler: str | None = None, layer_steps: int | None = None,
                 voxel_order: str = "calochallenge", opset: int = DEFAULT_OPSET,
                 tolerance: float = DEFAULT_TOLERANCE, seed: int = 0, triton: TritonModelOptions | None = None,
                 overwrite: bool = False) -> ExportResult:
    """Export checkpoint ``model`` (a path or ``"default"``) as a fixed-step sampler graph.

    ``fmt``: ``onnx`` / ``torchscript`` write ``out/model.{onnx,pt}`` + ``metadata.json``; ``triton``
    writes model ``triton.name`` into the Triton repository ``out``. ``sampler``/``steps`` (voxel
    diffusion), ``layer_sampler``/``layer_steps`` (layer-energy diffusion): default those of
    :func:`caloforge.generation.generate_showers`. ``seed`` picks the noise of the export-time check
    (the graph itself has no randomness). Fails with :class:`~caloforge.deploy.export.ExportMismatchError`
    if the exported file differs from PyTorch by more than ``tolerance`` x the largest voxel energy.
    """
    if fmt not in ("onnx", "torchscript", "triton"):
        raise CaloforgeError(f"unknown export format {fmt!r}; choose onnx, torchscript or triton")
    graph = build_sampler_graph(model, sampler=sampler, steps=steps, layer_sampler=layer_sampler,
                                layer_steps=layer_steps)
    graph = with_voxel_order(graph, voxel_order)
    source = {"checkpoint": str(model)}
    if fmt == "triton":
        options = triton or TritonModelOptions()
        path, meta = write_triton_model(graph, out, options, overwrite=overwrite, opset=opset, tolerance=tolerance,
                                        metadata=source, check_seed=seed)
    else:
        path, meta = write_export_dir(graph, out, fmt, overwrite=overwrite, opset=opset, tolerance=tolerance,
                                      metadata=source, check_seed=seed)
    config = ExportConfig(str(model), fmt, str(out), graph.spec.sampler, graph.spec.steps,
                          graph.spec.extra.get("layer_sampler"), graph.spec.extra.get("layer_steps"), voxel_order,
                          opset, tolerance, seed, asdict(triton or TritonModelOptions()) if fmt == "triton" else {})
    save_config(config, path / EXPORT_CONFIG_FILE)
    return ExportResult(path, meta)
