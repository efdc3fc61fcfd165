"""Locate the Geant4 data tables and export the variables Geant4 reads, before ``import geant4_pybind``.

Order of preference:

1. variables already set by the user (``GEANT4_DATA_DIR``, ``G4LEDATA``, ``G4ENSDFSTATEDATA``,
   ``G4LEVELGAMMADATA``) are kept as they are; missing ones are filled in from ``GEANT4_DATA_DIR``;
2. the minimal EM tables in ``../shared/geant4-data``, looked up relative to the current directory
   and relative to the caloforge source checkout (``<repo>/../shared/geant4-data``);
3. geant4_pybind's own download in ``~/.geant4_pybind`` (full data, ~2 GB);
4. otherwise :class:`Geant4DataError` says exactly which variables to set.

``GEANT4_DATA_DIR`` is always set in the returned environment: without it geant4_pybind prompts on
stdin to download the data (or, under ``CI=true``, tries the network), which must never happen here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from caloforge.errors import CaloforgeError

__all__ = ["Geant4DataError", "geant4_data_env", "available_elements", "DATA_VARIABLES"]

#: variable -> folder-name prefix of the dataset it points to
DATA_VARIABLES = {
    "G4LEDATA": "G4EMLOW",
    "G4ENSDFSTATEDATA": "G4ENSDFSTATE",
    "G4LEVELGAMMADATA": "PhotonEvaporation",
}

_HOW_TO = (
    "set GEANT4_DATA_DIR, G4LEDATA, G4ENSDFSTATEDATA and G4LEVELGAMMADATA (see docs/fullsim.md), "
    "or put the tables at ../shared/geant4-data, or download the full Geant4 data once with "
    "`python -c 'import geant4_pybind'` on a machine with internet"
)


class Geant4DataError(CaloforgeError):
    """The Geant4 data tables cannot be found (message says which variables to set)."""


def _find_dataset(folder: Path, prefix: str) -> Path | None:
    if not folder.is_dir():
        return None
    matches = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(prefix))
    return matches[-1] if matches else None


def _candidate_dirs(cwd: Path) -> list[Path]:
    repo_root = Path(__file__).resolve().parents[3]  # <repo>/src/caloforge/fullsim/environment.py
    candidates = [cwd / ".." / "shared" / "geant4-data", repo_root / ".." / "shared" / "geant4-data"]
    home = os.environ.get("HOME")
    if home:
        candidates.append(Path(home) / ".geant4_pybind")
    return candidates


def _complete(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    env["GEANT4_DATA_DIR"] = str(data_dir)
    for var, prefix in DATA_VARIABLES.items():
        if var not in env:
            found = _find_dataset(data_dir, prefix)
            # G4LEVELGAMMADATA must be set for EM-only physics but need not exist (shared/README.md)
            env[var] = str(found if found else data_dir / f"{prefix}-absent")
    return env


def geant4_data_env(environ: Mapping[str, str] | None = None, search: Sequence[str | Path] | None = None
                    ) -> dict[str, str]:
    """The Geant4 data variables to export (a dict of the four variables, absolute paths).

    ``environ`` defaults to ``os.environ`` (nothing is modified here); ``search``: folders to look
    in when no variable is set (default: ``../shared/geant4-data`` from the current directory and
    from the source checkout, then ``~/.geant4_pybind``). Raises :class:`Geant4DataError` when no
    usable EM tables (``G4EMLOW*``) are found.
    """
    environ = os.environ if environ is None else environ
    folders = [Path(p) for p in search] if search is not None else _candidate_dirs(Path.cwd())
    given = {k: environ[k] for k in ("GEANT4_DATA_DIR", *DATA_VARIABLES) if environ.get(k)}
    if "GEANT4_DATA_DIR" in given:
        env = _complete(Path(given["GEANT4_DATA_DIR"]), dict(given))
        source = "GEANT4_DATA_DIR"
    elif "G4LEDATA" in given:
        env = _complete(Path(given["G4LEDATA"]).parent, dict(given))
        source = "G4LEDATA"
    else:
        env, source = {}, ""
        for folder in folders:
            if _find_dataset(folder, "G4EMLOW") is not None:
                env = _complete(folder.resolve(), {})
                source = str(folder)
                break
        if not env:
            raise Geant4DataError(f"Geant4 data tables not found: {_HOW_TO}")
    ledata = Path(env["G4LEDATA"])
    if not ledata.is_dir():
        raise Geant4DataError(f"Geant4 EM data folder {ledata} (from {source}) does not exist: {_HOW_TO}")
    return env


def available_elements(ledata: str | Path) -> set[int] | None:
    """Atomic numbers Z with EM data tables in ``ledata`` (G4EMLOW); None = cannot tell (assume all).

    An element needs Seltzer-Berger bremsstrahlung (``brem_SB/br<Z>``), photoelectric
    (``epics2017/phot/pe-cs-<Z>.dat``) and Rayleigh (``epics2017/rayl/re-cs-<Z>.dat``) tables.
    """
    ledata = Path(ledata)
    phot, rayl, brem = ledata / "epics2017" / "phot", ledata / "epics2017" / "rayl", ledata / "brem_SB"
    if not (phot.is_dir() and rayl.is_dir() and brem.is_dir()):
        return None
    return {
        z for z in range(1, 101)
        if (phot / f"pe-cs-{z}.dat").is_file() and (rayl / f"re-cs-{z}.dat").is_file() and (brem / f"br{z}").is_file()
    }
