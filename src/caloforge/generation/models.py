"""Finding and loading trained models: a checkpoint path or ``"default"`` (the bundled model)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from caloforge.diffusion.model import ShowerDiffusionModel
from caloforge.errors import CaloforgeError
from caloforge.train.checkpoint import load_model_file

__all__ = ["BUNDLED_MODELS", "DEFAULT_MODEL", "FALLBACK_SAMPLING", "LoadedModel", "default_model_path", "load_model"]

#: file name of the bundled default model in ``caloforge/data/models``: the ds2 electron diffusion
#: model consistency-distilled and shape-tuned for one-step sampling (docs/fast_sampling.md)
DEFAULT_MODEL = "ds2_electrons_fast.pt"

#: bundled models by name (``--model NAME``): ``ds2-fast`` is the default; ``ds2-full`` is the
#: undistilled diffusion model it was distilled from (DDPM 50 steps; the teacher for
#: ``caloforge distill`` and the base of SDEdit refinement, ``caloforge refine``)
BUNDLED_MODELS = {"ds2-fast": DEFAULT_MODEL, "ds2-full": "ds2_electrons.pt"}


#: sampling settings for model files that do not recommend their own (``training["sampling"]``)
FALLBACK_SAMPLING = {"sampler": "ddpm", "steps": 50, "layer_sampler": "heun", "layer_steps": 32}


def default_model_path() -> Path:
    """Path of the bundled default model (ds2 electrons, 1-100 GeV); it may be absent."""
    return Path(str(resources.files("caloforge") / "data" / "models" / DEFAULT_MODEL))


class LoadedModel:
    """A model with where it came from: ``model`` (eval mode), ``source`` (path or ``"default"``),
    ``meta`` (checkpoint metadata: config, geometry, training, caloforge version)."""

    def __init__(self, model: ShowerDiffusionModel, source: str, meta: dict) -> None:
        self.model = model
        self.source = source
        self.meta = meta

    @property
    def geometry(self):
        return self.model.geometry

    @property
    def sampling(self) -> dict:
        """The sampler settings this model was validated with: ``sampler``, ``steps``,
        ``layer_sampler``, ``layer_steps`` (its file's ``training["sampling"]`` over
        :data:`FALLBACK_SAMPLING`). What ``caloforge generate`` uses when no sampler is given."""
        own = (self.meta.get("training") or {}).get("sampling") or {}
        return {**FALLBACK_SAMPLING, **{k: v for k, v in own.items() if k in FALLBACK_SAMPLING}}

    def __repr__(self) -> str:
        return f"LoadedModel({self.source!r}, geometry={self.geometry.name!r})"


def load_model(path_or_default: str | Path = "default") -> LoadedModel:
    """Load a model file, the bundled default for ``"default"`` or another bundled model by name
    (:data:`BUNDLED_MODELS`, e.g. ``"ds2-fast"``).

    Raises :class:`~caloforge.errors.CaloforgeError` (one line) if the file is missing,
    not a caloforge model, or incompatible with this caloforge version.
    """
    if str(path_or_default) == "default":
        path = default_model_path()
        if not path.is_file():
            raise CaloforgeError(
                f"no bundled default model in this installation (expected {DEFAULT_MODEL} in caloforge/data/models); "
                "train one with `caloforge train` and pass --model PATH/model.pt"
            )
        source = "default"
    elif str(path_or_default) in BUNDLED_MODELS:
        path, source = default_model_path().with_name(BUNDLED_MODELS[str(path_or_default)]), str(path_or_default)
        if not path.is_file():
            raise CaloforgeError(f"bundled model {source!r} is missing from this installation ({path.name})")
    else:
        path, source = Path(path_or_default), str(path_or_default)
    model, meta = load_model_file(path)
    return LoadedModel(model, source, meta)
