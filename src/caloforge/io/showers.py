"""CaloChallenge HDF5 shower files: streamed reading, validation and atomic, resumable writing.

A file holds ``incident_energies`` (N, 1) and ``showers`` (N, V), both MeV. caloforge writes them
as float32 with gzip compression, plus optional per-shower extras (e.g. ``cpu_time_s`` (N,)) and
metadata attributes (geometry, particle, generator, seed, caloforge version).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from caloforge.errors import InputFileError
from caloforge.io.atomic import check_output_path

ENERGY_KEY = "incident_energies"
SHOWER_KEY = "showers"
DEFAULT_CHUNK = 4096


@dataclass
class ShowerFileInfo:
    """Structure of a shower file (nothing read but shapes and attributes)."""

    path: Path
    n_showers: int
    n_voxels: int
    attrs: dict[str, Any] = field(default_factory=dict)
    extras: tuple[str, ...] = ()


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not an HDF5 file")
    if not h5py.is_hdf5(path):
        raise InputFileError(f"{path}: not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputFileError(f"{path}: cannot open HDF5 file ({exc})") from None


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def file_info(path: str | Path) -> ShowerFileInfo:
    """Check the structure of a CaloChallenge file (keys, ranks, matching N) and return its info."""
    path = Path(path)
    with _open(path) as f:
        for key in (ENERGY_KEY, SHOWER_KEY):
            if key not in f:
                raise InputFileError(f"{path}: missing dataset '{key}' (found: {sorted(f.keys())})")
            if not isinstance(f[key], h5py.Dataset):
                raise InputFileError(f"{path}: '{key}' is not a dataset")
        e_shape, s_shape = f[ENERGY_KEY].shape, f[SHOWER_KEY].shape
        if len(s_shape) != 2:
            raise InputFileError(f"{path}: '{SHOWER_KEY}' must have shape (N, n_voxels), got {s_shape}")
        if len(e_shape) not in (1, 2) or (len(e_shape) == 2 and e_shape[1] != 1):
            raise InputFileError(f"{path}: '{ENERGY_KEY}' must have shape (N, 1), got {e_shape}")
        if e_shape[0] != s_shape[0]:
            raise InputFileError(
                f"{path}: '{ENERGY_KEY}' has {e_shape[0]} entries but '{SHOWER_KEY}' has {s_shape[0]}"
            )
        attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
        extras = tuple(k for k in f.keys() if k not in (ENERGY_KEY, SHOWER_KEY) and isinstance(f[k], h5py.Dataset))
        return ShowerFileInfo(path, int(s_shape[0]), int(s_shape[1]), attrs, extras)


def iter_showers(
    path: str | Path, chunk_size: int = DEFAULT_CHUNK, start: int = 0, stop: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(incident_energies (n, 1) float32 MeV, showers (n, V) float32 MeV)`` chunks.

    Only one chunk is in memory at a time, so files far larger than memory can be processed.
    """
    path = Path(path)
    info = file_info(path)
    stop = info.n_showers if stop is None else min(stop, info.n_showers)
    with _open(path) as f:
        e_ds, s_ds = f[ENERGY_KEY], f[SHOWER_KEY]
        for lo in range(start, stop, chunk_size):
            hi = min(lo + chunk_size, stop)
            energies = np.asarray(e_ds[lo:hi], dtype=np.float32).reshape(-1, 1)
            yield energies, np.asarray(s_ds[lo:hi], dtype=np.float32)


def read_showers(path: str | Path, max_showers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a whole file (or its first ``max_showers``): ``(energies (N, 1), showers (N, V))`` float32."""
    chunks = list(iter_showers(path, stop=max_showers))
    if not chunks:
        info = file_info(path)
        return np.zeros((0, 1), np.float32), np.zeros((0, info.n_voxels), np.float32)
    return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])


def read_extra(path: str | Path, key: str) -> np.ndarray:
    """Read a per-shower extra dataset (e.g. ``cpu_time_s``)."""
    path = Path(path)
    with _open(path) as f:
        if key not in f:
            raise InputFileError(f"{path}: missing dataset '{key}'")
        return np.asarray(f[key][...])


def _first(indices: np.ndarray, n: int = 5) -> str:
    return ", ".join(str(int(i)) for i in indices[:n]) + (" ..." if indices.size > n else "")


def find_problems(
    path: str | Path, n_voxels: int | None = None, chunk_size: int = DEFAULT_CHUNK, geometry_name: str = ""
) -> list[str]:
    """Stream through a file and list every content problem (empty list = valid).

    Checks: voxel count against ``n_voxels``; NaN/inf and negative values in both datasets; zero or
    negative incident energies. Each message gives the count and the first shower indices.
    Structural problems (missing file/key, N mismatch) raise :class:`InputFileError` instead.
    """
    path = Path(path)
    info = file_info(path)
    problems: list[str] = []
    if n_voxels is not None and info.n_voxels != n_voxels:
        geo = f" of geometry {geometry_name}" if geometry_name else ""
        problems.append(f"{path}: '{SHOWER_KEY}' has {info.n_voxels} voxels per shower, expected {n_voxels}{geo}")
        return problems
    bad: dict[str, list[np.ndarray]] = {k: [] for k in ("e_nonfinite", "e_nonpos", "s_nonfinite", "s_negative")}
    offset = 0
    for energies, showers in iter_showers(path, chunk_size):
        e = energies[:, 0]
        bad["e_nonfinite"].append(offset + np.flatnonzero(~np.isfinite(e)))
        bad["e_nonpos"].append(offset + np.flatnonzero(np.isfinite(e) & (e <= 0)))
        bad["s_nonfinite"].append(offset + np.flatnonzero(~np.isfinite(showers).all(axis=1)))
        bad["s_negative"].append(offset + np.flatnonzero((showers < 0).any(axis=1)))
        offset += len(e)
    text = {
        "e_nonfinite": f"'{ENERGY_KEY}' has NaN/inf values",
        "e_nonpos": f"'{ENERGY_KEY}' has zero or negative values",
        "s_nonfinite": f"'{SHOWER_KEY}' has NaN/inf values",
        "s_negative": f"'{SHOWER_KEY}' has negative energies",
    }
    for key, parts in bad.items():
        idx = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if idx.size:
            problems.append(f"{path}: {text[key]} in {idx.size} shower(s) (first indices: {_first(idx)})")
    return problems


def validate_file(path: str | Path, n_voxels: int | None = None, geometry_name: str = "") -> ShowerFileInfo:
    """Raise :class:`InputFileError` with the first problem found; return the file info if valid."""
    problems = find_problems(path, n_voxels, geometry_name=geometry_name)
    if problems:
        more = f" (+{len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise InputFileError(problems[0] + more)
    return file_info(path)


class ShowerWriter:
    """Append showers chunk by chunk to a CaloChallenge file; atomic and crash-safe.

    Data go to ``<out>.partial.h5`` (flushed after every :meth:`append`); :meth:`close` renames it
    to ``<out>``. If the run fails or is interrupted the partial file stays, holding every finished
    chunk as a valid CaloChallenge file. ``extras``: names of per-shower datasets, 1-D (N,) or 2-D.

    Use as a context manager::

        with ShowerWriter(out, n_voxels=6480, metadata={...}) as w:
            w.append(energies, showers, cpu_time_s=times)
    """

    def __init__(
        self,
        path: str | Path,
        n_voxels: int,
        metadata: dict[str, Any] | None = None,
        *,
        overwrite: bool = False,
        compression: str | None = "gzip",
    ) -> None:
        self.path = check_output_path(path, overwrite)
        self.partial_path = self.path.with_name(self.path.name + ".partial.h5")
        self.n_voxels = int(n_voxels)
        self.n_written = 0
        self._compression = compression
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial_path.unlink(missing_ok=True)
        self._file = h5py.File(self.partial_path, "w")
        rows = max(1, min(1024, (1 << 22) // (4 * self.n_voxels)))
        self._file.create_dataset(ENERGY_KEY, shape=(0, 1), maxshape=(None, 1), dtype="f4", chunks=(1024, 1))
        self._file.create_dataset(
            SHOWER_KEY, shape=(0, self.n_voxels), maxshape=(None, self.n_voxels), dtype="f4",
            chunks=(rows, self.n_voxels), compression=compression,
        )
        from caloforge import __version__

        self.set_metadata({"caloforge_version": __version__, **(metadata or {})})

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Store attributes (non-scalar values as JSON text)."""
        for key, value in metadata.items():
            if value is None:
                continue
            if isinstance(value, (dict, list, tuple)):
                value = json.dumps(value)
            self._file.attrs[key] = value

    def append(self, energies: np.ndarray, showers: np.ndarray, **extras: np.ndarray) -> None:
        """Append ``energies`` (n,) or (n, 1) MeV and ``showers`` (n, V) MeV; flush to disk."""
        energies = np.asarray(energies, dtype=np.float32).reshape(-1, 1)
        showers = np.asarray(showers, dtype=np.float32)
        n = energies.shape[0]
        if showers.shape != (n, self.n_voxels):
            raise ValueError(f"showers shape {showers.shape} does not match ({n}, {self.n_voxels})")
        lo, hi = self.n_written, self.n_written + n
        for key, data in ((ENERGY_KEY, energies), (SHOWER_KEY, showers)):
            self._file[key].resize(hi, axis=0)
            self._file[key][lo:hi] = data
        for key, value in extras.items():
            value = np.asarray(value)
            if value.shape[0] != n:
                raise ValueError(f"extra '{key}' has {value.shape[0]} rows, expected {n}")
            if key not in self._file:
                self._file.create_dataset(key, shape=(0, *value.shape[1:]), maxshape=(None, *value.shape[1:]),
                                          dtype=value.dtype, chunks=True)
            self._file[key].resize(hi, axis=0)
            self._file[key][lo:hi] = value
        self.n_written = hi
        self._file.flush()

    def close(self) -> Path:
        """Finish the file and move it into place."""
        self._file.attrs["n_showers"] = self.n_written
        self._file.close()
        os.replace(self.partial_path, self.path)
        return self.path

    def abort(self) -> Path:
        """Close without renaming: the partial file keeps the finished showers."""
        self._file.close()
        return self.partial_path

    def __enter__(self) -> "ShowerWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_showers(
    path: str | Path,
    energies: np.ndarray,
    showers: np.ndarray,
    metadata: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
    **extras: np.ndarray,
) -> Path:
    """Write a whole CaloChallenge file atomically (float32, gzip)."""
    with ShowerWriter(path, np.asarray(showers).shape[1], metadata, overwrite=overwrite) as writer:
        writer.append(energies, showers, **extras)
    return Path(path)
