"""Export a :class:`~caloforge.deploy.graph.SamplerGraph` to ONNX or TorchScript, checked on export.

The exported file takes ``incident_energy (N, 1) float32 MeV`` and ``noise (N, D) float32``
(standard normal) and returns ``showers (N, V) float32 MeV``; N is dynamic. Right after writing it,
the file is loaded back with ONNX Runtime / ``torch.jit.load`` and run on a batch of a different
size than the one traced; the largest absolute difference to the PyTorch graph is stored in the
metadata and the export fails if it exceeds the tolerance.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from caloforge import __version__
from caloforge.deploy.graph import INPUT_NAMES, OUTPUT_NAMES, SamplerGraph, make_noise
from caloforge.errors import CaloforgeError
from caloforge.io import check_output_path

__all__ = [
    "DEFAULT_OPSET",
    "ExportCheck",
    "ExportMismatchError",
    "check_export",
    "export_onnx",
    "export_torchscript",
    "file_sha256",
    "onnx_session",
    "reference_inputs",
    "write_export_dir",
]

DEFAULT_OPSET = 17
#: export check: max |exported - PyTorch| allowed, relative to the largest voxel energy. Float
#: noise of the ONNX Runtime kernels, amplified by the exp/normalisation decoding, reaches ~1e-3
#: for the 1-step distilled ds2 model; real export bugs give O(1) differences
DEFAULT_TOLERANCE = 5e-3
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.pt"
METADATA_FILE = "metadata.json"
_METADATA_KEY = "caloforge"


class ExportMismatchError(CaloforgeError):
    """The exported file does not reproduce the PyTorch graph within the tolerance."""


@dataclass(frozen=True)
class ExportCheck:
    """Result of running an exported file against the PyTorch graph on the same inputs.

    ``max_abs_diff_mev``: max |exported - pytorch| over all voxels (MeV);
    ``max_abs_reference_mev``: max |pytorch| (the scale of the comparison);
    ``n_showers``: batch size used (differs from the traced one, so the dynamic batch is exercised).
    """

    runtime: str
    n_showers: int
    max_abs_diff_mev: float
    max_abs_reference_mev: float

    @property
    def relative(self) -> float:
        return self.max_abs_diff_mev / max(self.max_abs_reference_mev, 1e-30)

    def as_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "n_showers": self.n_showers, "max_abs_diff_mev": self.max_abs_diff_mev,
                "max_abs_reference_mev": self.max_abs_reference_mev, "max_diff_over_max_reference": self.relative}


def reference_inputs(graph: SamplerGraph, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Check inputs: ``n`` energies log-spaced over the training range (n, 1) MeV and noise of ``seed``."""
    lo, hi = graph.spec.energy_range_mev
    energies = np.geomspace(lo, hi, n).astype(np.float32).reshape(n, 1)
    return energies, make_noise(graph.spec.noise_parts, n, seed)


def onnx_session(path: str | Path, threads: int = 1) -> Any:
    """ONNX Runtime CPU session for an exported sampler graph.

    Memory reuse planning is off: its planner is quadratic in the node count and the unrolled
    sampler graph has tens of thousands of nodes (heun, 16 steps: ~32k nodes, about 3 min to load
    with it, about 10 s without); tensors are still freed as soon as they are consumed.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_mem_reuse = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run_torch(graph: SamplerGraph, energies: np.ndarray, noise: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return graph(torch.from_numpy(energies), torch.from_numpy(noise)).numpy()


def _index_add_symbolic(g: Any, self: Any, dim: Any, index: Any, source: Any, alpha: Any = None) -> Any:
    """``index_add`` as ``ScatterElements(reduction="add")`` (opset >= 16), which sums duplicate indices.

    The stock symbolic of the TorchScript-based exporter drops duplicates (it warns "will cause the
    ONNX model to be incorrect"); summing voxels into their layer (``index_add`` with repeated layer
    indices) needs them.
    """
    from torch.onnx import symbolic_helper

    axis = symbolic_helper._get_const(dim, "i", "dim")
    shape = [1] * symbolic_helper._get_tensor_rank(source)
    shape[axis] = -1
    indices = g.op("Reshape", index, g.op("Constant", value_t=torch.tensor(shape, dtype=torch.int64)))
    indices = g.op("Expand", indices, g.op("Shape", source))
    return g.op("ScatterElements", self, indices, source, axis_i=axis, reduction_s="add")


def export_onnx(graph: SamplerGraph, path: str | Path, *, opset: int = DEFAULT_OPSET,
                metadata: dict[str, Any] | None = None, trace_batch: int = 2) -> Path:
    """Write ``graph`` as ONNX with a dynamic batch axis ``N`` on every input and output.

    ``metadata`` is embedded as JSON in the model's ``metadata_props`` (key ``caloforge``).
    Uses the TorchScript-based exporter (no ``onnxscript`` needed); a fixed-step sampler loop is unrolled.
    """
    import onnx

    path = Path(path)
    energies, noise = reference_inputs(graph, trace_batch, seed=0)
    axes = {name: {0: "N"} for name in (*INPUT_NAMES, *OUTPUT_NAMES)}
    graph = graph.eval()
    if opset < 16:
        raise CaloforgeError(f"ONNX opset {opset}: caloforge graphs need opset >= 16 (ScatterElements with add)")
    torch.onnx.register_custom_op_symbolic("aten::index_add", _index_add_symbolic, opset)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # legacy exporter, kept while torch is pinned
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(graph, (torch.from_numpy(energies), torch.from_numpy(noise)), str(path), dynamo=False,
                              input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES), dynamic_axes=axes,
                              opset_version=opset, do_constant_folding=True)
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::index_add", opset)
    if metadata is not None:
        model = onnx.load(str(path))
        onnx.helper.set_model_props(model, {_METADATA_KEY: json.dumps(metadata)})
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return path


def export_torchscript(graph: SamplerGraph, path: str | Path, *, metadata: dict[str, Any] | None = None,
                       trace_batch: int = 2) -> Path:
    """Write ``graph`` as a traced TorchScript module (loadable from C++ with ``torch::jit::load``).

    ``metadata`` is stored as the extra file ``caloforge.json`` inside the archive.
    """
    path = Path(path)
    energies, noise = reference_inputs(graph, trace_batch, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream; libtorch needs it
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(graph.eval(), (torch.from_numpy(energies), torch.from_numpy(noise)),
                                 check_trace=False)
        extra = {f"{_METADATA_KEY}.json": json.dumps(metadata or {})}
        torch.jit.save(traced, str(path), _extra_files=extra)
    return path


def check_export(graph: SamplerGraph, path: str | Path, fmt: Literal["onnx", "torchscript"], *,
                 n_showers: int = 3, seed: int = 1, threads: int = 1) -> ExportCheck:
    """Run the exported file and ``graph`` on the same ``n_showers`` inputs; return the max abs difference."""
    energies, noise = reference_inputs(graph, n_showers, seed)
    reference = _run_torch(graph, energies, noise)
    if fmt == "onnx":
        import onnxruntime as ort

        session = onnx_session(path, threads)
        (exported,) = session.run(list(OUTPUT_NAMES), {INPUT_NAMES[0]: energies, INPUT_NAMES[1]: noise})
        runtime = f"onnxruntime {ort.__version__}"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path))
            with torch.no_grad():
                exported = module(torch.from_numpy(energies), torch.from_numpy(noise)).numpy()
        runtime = f"torch.jit {torch.__version__}"
    if exported.shape != reference.shape:
        raise ExportMismatchError(f"{path}: exported graph returned shape {exported.shape}, expected {reference.shape}")
    return ExportCheck(runtime, n_showers, float(np.max(np.abs(exported.astype(np.float64) - reference))),
                       float(np.max(np.abs(reference))))


def staging_dir(parent: Path, name: str) -> Path:
    """A new hidden folder ``parent/.name.<random>`` (mode from the umask, unlike ``mkdtemp``'s 0700),
    where an output folder is built before it is renamed into place."""
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f".{name}.{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_export_dir(graph: SamplerGraph, out: str | Path, fmt: Literal["onnx", "torchscript"], *,
                     overwrite: bool = False, opset: int = DEFAULT_OPSET, tolerance: float = DEFAULT_TOLERANCE,
                     metadata: dict[str, Any] | None = None, check_seed: int = 1) -> tuple[Path, dict[str, Any]]:
    """Export ``graph`` into folder ``out`` (``model.onnx`` or ``model.pt`` + ``metadata.json``), atomically.

    The folder is built beside ``out`` and renamed into place only after the numerical check passed:
    ``max_abs_diff <= tolerance * max|reference|`` (else :class:`ExportMismatchError`).
    Returns the folder and the metadata written.
    """
    out = check_output_path(out, overwrite)
    tmp = staging_dir(out.parent, out.name)
    try:
        meta = {"format": fmt, "caloforge_version": __version__, "torch_version": torch.__version__,
                **graph.spec.as_dict(), **(metadata or {})}
        if fmt == "onnx":
            meta["opset"] = opset
            model_file = export_onnx(graph, tmp / ONNX_FILE, opset=opset, metadata=meta)
        elif fmt == "torchscript":
            model_file = export_torchscript(graph, tmp / TORCHSCRIPT_FILE, metadata=meta)
        else:
            raise CaloforgeError(f"unknown export format {fmt!r}; choose onnx or torchscript")
        check = check_export(graph, model_file, fmt, seed=check_seed)
        if check.max_abs_diff_mev > tolerance * check.max_abs_reference_mev:
            raise ExportMismatchError(
                f"{out}: exported {fmt} differs from PyTorch by {check.max_abs_diff_mev:.3g} MeV "
                f"(max shower voxel {check.max_abs_reference_mev:.3g} MeV, tolerance {tolerance:g} relative)"
            )
        meta.update({"file": model_file.name, "sha256": file_sha256(model_file), "check": check.as_dict()})
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, meta
