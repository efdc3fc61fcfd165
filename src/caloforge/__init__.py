"""caloforge: fast calorimeter simulation with Geant4 ground truth and generative models.

Public entry points live in the sub-packages (``caloforge.geometry``, ``caloforge.io``,
``caloforge.features``, ...); the ``caloforge`` command is a thin layer over them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("caloforge")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
