"""Merge shard files of one sharded job (``--num-shards M --shard-index i``) into one file.

Shards must come from the same job: same voxel count, geometry, particle, generator, seed,
number of shards and job options (:data:`JOB_ATTRS`), each shard index exactly once. They are
concatenated in shard order, so the result equals the unsharded output of the same job bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from caloforge.errors import InputFileError
from caloforge.io.showers import ShowerWriter, file_info, iter_showers, read_extra

#: attributes that must agree between the shards of one job
JOB_ATTRS = ("geometry", "particle", "generator", "seed", "num_shards", "model", "sampler", "steps", "energy",
             "detector", "n_requested", "n", "batch_size", "layer_sampler", "layer_steps", "energies_from",
             "precision")


def merge_shards(paths: Sequence[str | Path], out: str | Path, *, overwrite: bool = False) -> Path:
    """Concatenate shard files (in ``shard_index`` order) into ``out``; refuse mismatched shards."""
    if not paths:
        raise InputFileError("merge: no shard files given")
    infos = [file_info(p) for p in paths]
    first = infos[0]
    for info in infos[1:]:
        if info.n_voxels != first.n_voxels:
            raise InputFileError(
                f"{info.path}: has {info.n_voxels} voxels per shower but {first.path} has {first.n_voxels}"
            )
        for key in JOB_ATTRS:
            if info.attrs.get(key) != first.attrs.get(key):
                raise InputFileError(
                    f"{info.path}: attribute '{key}' = {info.attrs.get(key)!r} differs from "
                    f"{first.path} ({first.attrs.get(key)!r}); shards of different jobs cannot be merged"
                )
        if set(info.extras) != set(first.extras):
            raise InputFileError(f"{info.path}: per-shower datasets {info.extras} differ from {first.path}")
    if "shard_index" in first.attrs:
        indices = [int(i.attrs.get("shard_index", -1)) for i in infos]
        expected = list(range(int(first.attrs.get("num_shards", len(infos)))))
        if sorted(indices) != expected:
            raise InputFileError(f"merge: shard indices {sorted(indices)} given, expected each of {expected} once")
        infos = [info for _, info in sorted(zip(indices, infos), key=lambda t: t[0])]
    metadata = {k: v for k, v in first.attrs.items() if k not in ("shard_index", "n_showers", "caloforge_version")}
    metadata["merged_from"] = [str(i.path.name) for i in infos]
    if all(isinstance(i.attrs.get("shower_indices"), list) for i in infos):
        metadata["shower_indices"] = [infos[0].attrs["shower_indices"][0], infos[-1].attrs["shower_indices"][-1]]
    with ShowerWriter(out, first.n_voxels, metadata, overwrite=overwrite) as writer:
        for info in infos:
            extras = {key: read_extra(info.path, key) for key in info.extras}
            offset = 0
            for energies, showers in iter_showers(info.path):
                n = len(energies)
                writer.append(energies, showers, **{k: v[offset:offset + n] for k, v in extras.items()})
                offset += n
    return Path(out)
