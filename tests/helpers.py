"""Small builders shared by the foundation tests."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def write_raw_h5(path: Path, **datasets: np.ndarray) -> Path:
    """Write arbitrary datasets to an HDF5 file (to build malformed inputs on purpose)."""
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
    return path


def random_showers(n: int, n_voxels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(energies (n, 1) MeV, showers (n, V) MeV) with sparse exponential voxel energies."""
    rng = np.random.default_rng(seed)
    energies = (1000.0 * 10 ** rng.uniform(0, 2, size=(n, 1))).astype(np.float32)
    showers = rng.exponential(5.0, size=(n, n_voxels)).astype(np.float32)
    showers *= rng.random((n, n_voxels)) < 0.3
    return energies, showers
