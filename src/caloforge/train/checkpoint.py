"""Self-describing model files and resumable training states.

A **model file** (``model.pt``) is one ``torch.save`` dict that rebuilds the generator without any
other input::

    format            "caloforge-diffusion-model"
    format_version    1
    caloforge_version version that wrote it
    config            ModelConfig as a plain mapping
    geometry          CylindricalReadout.to_dict()
    state_dict        EMA weights + fitted preprocessing buffers
    training          metadata (epochs, steps, losses, data files, seed, wall time, torch version)

It holds only tensors and plain Python values, so it loads with ``torch.load(weights_only=True)``
(no pickled code, unlike NVlabs/edm). A **training state** (``last.pt``) adds raw weights,
optimiser, LR scheduler, RNG and history so ``caloforge train --resume`` continues exactly.
Loading anything else fails with one clear line (:class:`~caloforge.errors.InputFileError`).
"""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path
from typing import Any

import torch

from caloforge import __version__
from caloforge.config import from_dict, to_dict
from caloforge.diffusion.model import ModelConfig, ShowerDiffusionModel
from caloforge.errors import CaloforgeError, InputFileError
from caloforge.geometry import CylindricalReadout
from caloforge.io import atomic_path, atomic_write_text

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "STATE_FORMAT",
    "load_model_file",
    "load_training_state",
    "read_checkpoint",
    "save_model_file",
    "save_training_state",
]

MODEL_FORMAT = "caloforge-diffusion-model"
STATE_FORMAT = "caloforge-training-state"
MODEL_FORMAT_VERSION = 1


def save_checkpoint(obj: dict, path: str | Path) -> Path:
    """Write a checkpoint dict with torch.save, atomically (temp file + rename)."""
    with atomic_path(path, overwrite=True, suffix=".pt") as tmp:
        torch.save(obj, tmp)
    return Path(path)


def read_checkpoint(path: str | Path, expected_format: str) -> dict[str, Any]:
    """Read a checkpoint dict and check its format and version (clear one-line errors)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint files
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        reason = next((line for line in lines if "Unpickler error" in line), lines[0] if lines else type(exc).__name__)
        raise InputFileError(f"{path}: not a caloforge checkpoint (torch.load failed: {reason[:160]})") from None
    if not isinstance(data, dict) or "format" not in data:
        raise InputFileError(f"{path}: not a caloforge checkpoint (no 'format' entry)")
    fmt = data["format"]
    if fmt != expected_format:
        hint = " (a training state: use the model.pt next to it)" if fmt == STATE_FORMAT else ""
        raise InputFileError(f"{path}: checkpoint format is {fmt!r}, expected {expected_format!r}{hint}")
    version = data.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
        raise InputFileError(
            f"{path}: checkpoint format version {version!r} is not supported by caloforge {__version__} "
            f"(reads up to {MODEL_FORMAT_VERSION}); written by caloforge {data.get('caloforge_version', '?')}"
        )
    missing = [k for k in ("config", "geometry") if k not in data]
    if missing:
        raise InputFileError(f"{path}: checkpoint lacks {missing}")
    return data


def build_model(path: str | Path, config: dict, geometry: dict, state_dict: dict) -> ShowerDiffusionModel:
    """Rebuild the model from config + geometry and load ``state_dict`` (errors name ``path``)."""
    try:
        model_cfg = from_dict(ModelConfig, config, where="model config")
        geo = CylindricalReadout.from_dict(geometry)
    except CaloforgeError as exc:
        raise InputFileError(f"{path}: incompatible checkpoint: {exc}") from None
    model = ShowerDiffusionModel(geo, model_cfg)
    result = model.load_state_dict(state_dict, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f"missing weights {result.missing_keys[:3]}")
    if result.unexpected_keys:
        problems.append(f"unexpected weights {result.unexpected_keys[:3]}")
    if problems:
        raise InputFileError(f"{path}: weights do not match the architecture in its config: {'; '.join(problems)}")
    return model.eval()


def save_model_file(path: str | Path, model: ShowerDiffusionModel, training: dict[str, Any]) -> Path:
    """Write a self-describing model file (see module docstring) atomically."""
    return save_checkpoint({
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "caloforge_version": __version__,
        "config": to_dict(model.config),
        "geometry": model.geometry.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "training": training,
    }, path)


def load_model_file(path: str | Path) -> tuple[ShowerDiffusionModel, dict[str, Any]]:
    """Load a model file: ``(model in eval mode, checkpoint metadata without the weights)``."""
    data = read_checkpoint(path, MODEL_FORMAT)
    if "state_dict" not in data:
        raise InputFileError(f"{path}: checkpoint lacks 'state_dict'")
    try:
        model = build_model(path, data["config"], data["geometry"], data["state_dict"])
    except RuntimeError as exc:  # shape mismatches from load_state_dict
        first = str(exc).strip().splitlines()
        detail = next((line.strip() for line in first if "size mismatch" in line), first[0] if first else "")
        raise InputFileError(f"{path}: weights do not match the architecture in its config ({detail[:200]})") from None
    meta = {k: v for k, v in data.items() if k != "state_dict"}
    return model, meta


def save_training_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a resumable training state (``state`` holds config, weights, optimiser, ...)."""
    return save_checkpoint({"format": STATE_FORMAT, "format_version": MODEL_FORMAT_VERSION,
                  "caloforge_version": __version__, **state}, path)


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a training state written by :func:`save_training_state`."""
    return read_checkpoint(path, STATE_FORMAT)


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """Write per-epoch training records (one dict per epoch) as CSV, atomically."""
    if not history:
        return
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buf.getvalue())
