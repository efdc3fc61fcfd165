"""Generating showers with trained models: loading (``load_model("default")``), sampling, files."""

from caloforge.generation.generate import (
    GenerationResult,
    energies_from_spec,
    generate_file,
    generate_layer_energies,
    generate_showers,
    resolve_energies,
)
from caloforge.generation.models import BUNDLED_MODELS, DEFAULT_MODEL, LoadedModel, default_model_path, load_model

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_MODEL",
    "GenerationResult",
    "LoadedModel",
    "default_model_path",
    "energies_from_spec",
    "generate_file",
    "generate_layer_energies",
    "generate_showers",
    "load_model",
    "resolve_energies",
]
