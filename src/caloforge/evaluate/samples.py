"""Shower samples to compare: loading with validation, the cell threshold, pairing checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from caloforge.errors import InputFileError
from caloforge.features import apply_threshold
from caloforge.geometry import CylindricalReadout
from caloforge.io import SHOWER_KEY, file_info, read_showers, validate_file


@dataclass
class Sample:
    """One set of showers. ``energies`` (N, 1) float32 MeV; ``showers`` (N, V) float32 MeV;
    ``name`` says where it came from (file path or a label) in error messages."""

    energies: np.ndarray
    showers: np.ndarray
    name: str

    def __len__(self) -> int:
        return int(self.showers.shape[0])


def _check_geometry_attrs(path: Path, attrs: dict, geometry: CylindricalReadout) -> None:
    """A file that records its geometry must record the one we evaluate with."""
    desc = attrs.get("geometry_description")
    if isinstance(desc, dict):
        try:
            recorded = CylindricalReadout.from_dict(desc)
        except Exception:  # malformed description: the voxel count check still applies
            return
        if not recorded.same_binning(geometry):
            raise InputFileError(
                f"{path}: file was written for geometry {recorded.name!r}, whose binning differs from "
                f"{geometry.name!r} given for the evaluation"
            )


def load_sample(path: str | Path, geometry: CylindricalReadout, max_showers: int | None = None) -> Sample:
    """Validate a CaloChallenge file against ``geometry`` and read it (or its first ``max_showers``).

    Raises :class:`InputFileError` (one line naming the file) for a missing/malformed file, a
    voxel count that differs from the geometry, a geometry recorded in the file that differs,
    NaN/inf/negative values, non-positive incident energies, or an empty file.
    """
    path = Path(path)
    info = file_info(path)
    if info.n_voxels != geometry.n_voxels:
        raise InputFileError(
            f"{path}: '{SHOWER_KEY}' has {info.n_voxels} voxels per shower, expected {geometry.n_voxels} "
            f"of geometry {geometry.name}"
        )
    _check_geometry_attrs(path, info.attrs, geometry)
    if info.n_showers == 0:
        raise InputFileError(f"{path}: file holds no showers")
    validate_file(path, geometry.n_voxels, geometry_name=geometry.name)
    energies, showers = read_showers(path, max_showers=max_showers)
    return Sample(energies, showers, str(path))


def sample_from_arrays(energies: np.ndarray, showers: np.ndarray, geometry: CylindricalReadout, name: str) -> Sample:
    """Check in-memory arrays like a file: ``energies`` (N,) or (N, 1) MeV, ``showers`` (N, V) MeV."""
    energies = np.asarray(energies, dtype=np.float32).reshape(-1, 1)
    showers = np.asarray(showers, dtype=np.float32)
    if showers.ndim != 2:
        raise InputFileError(f"{name}: showers must have shape (N, n_voxels), got {showers.shape}")
    if showers.shape[1] != geometry.n_voxels:
        raise InputFileError(
            f"{name}: showers have {showers.shape[1]} voxels, expected {geometry.n_voxels} of geometry {geometry.name}"
        )
    if showers.shape[0] != energies.shape[0]:
        raise InputFileError(f"{name}: {energies.shape[0]} incident energies but {showers.shape[0]} showers")
    if showers.shape[0] == 0:
        raise InputFileError(f"{name}: no showers")
    if not np.isfinite(energies).all() or (energies <= 0).any():
        raise InputFileError(f"{name}: incident energies must be finite and > 0")
    if not np.isfinite(showers).all() or (showers < 0).any():
        raise InputFileError(f"{name}: showers must be finite and >= 0")
    return Sample(energies, showers, name)


def thresholded(sample: Sample, threshold_mev: float) -> Sample:
    """The sample with voxels below ``threshold_mev`` set to zero (CaloChallenge cell threshold)."""
    if threshold_mev <= 0:
        return sample
    return Sample(sample.energies, apply_threshold(sample.showers, threshold_mev), sample.name)


def check_paired(generated: Sample, reference: Sample, rtol: float = 1e-5) -> None:
    """Paired samples hold the same showers in the same order: same N, same incident energies."""
    if len(generated) != len(reference):
        raise InputFileError(
            f"--paired: {generated.name} has {len(generated)} showers but {reference.name} has {len(reference)}"
        )
    e_gen, e_ref = generated.energies[:, 0], reference.energies[:, 0]
    bad = np.flatnonzero(~np.isclose(e_gen, e_ref, rtol=rtol, atol=0.0))
    if bad.size:
        i = int(bad[0])
        raise InputFileError(
            f"--paired: incident energies differ in {bad.size} shower(s) (first: index {i}, "
            f"{e_gen[i]:g} MeV in {generated.name} vs {e_ref[i]:g} MeV in {reference.name})"
        )
