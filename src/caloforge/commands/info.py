"""``caloforge info FILE.h5``: summary and validation of a CaloChallenge shower file."""

from __future__ import annotations

import argparse

import numpy as np

from caloforge.commands._common import add_geometry
from caloforge.errors import CaloforgeError
from caloforge.features import features_from_file
from caloforge.geometry import CylindricalReadout, get_geometry
from caloforge.io import file_info, find_problems

NAME = "info"
HELP = "summarise and validate a CaloChallenge HDF5 shower file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="CaloChallenge HDF5 file")
    add_geometry(parser)
    parser.add_argument("--max-showers", type=int, default=None, help="only summarise the first N showers")


def _guess_geometry(n_voxels: int, attrs: dict) -> CylindricalReadout | None:
    name = attrs.get("geometry")
    if isinstance(name, str):
        try:
            return get_geometry(name)
        except CaloforgeError:
            name = None  # not a preset: fall back to the stored description or the voxel count
    if isinstance(attrs.get("geometry_description"), dict):
        return CylindricalReadout.from_dict(attrs["geometry_description"])
    for preset in ("ds1-photons", "ds1-pions", "ds2", "ds3"):
        geo = get_geometry(preset)
        if geo.n_voxels == n_voxels:
            return geo
    return None


def summarise(path: str, geometry_name: str | None = None, max_showers: int | None = None) -> tuple[str, list[str]]:
    """Text summary of a shower file and its list of validation problems."""
    info = file_info(path)
    geometry = get_geometry(geometry_name) if geometry_name else _guess_geometry(info.n_voxels, info.attrs)
    problems = find_problems(path, geometry.n_voxels if geometry else None,
                             geometry_name=geometry.name if geometry else "")
    lines = [f"file        {info.path}", f"showers     {info.n_showers}", f"voxels      {info.n_voxels}"]
    lines.append(f"geometry    {geometry.name if geometry else 'unknown (pass --geometry)'}")
    for key in ("particle", "generator", "seed", "caloforge_version"):
        if key in info.attrs:
            lines.append(f"{key:<12}{info.attrs[key]}")
    if info.extras:
        lines.append(f"extras      {', '.join(info.extras)}")
    if geometry is not None and not problems and info.n_showers > 0:
        feats = features_from_file(path, geometry, max_showers=max_showers)
        e_gev = feats.e_inc / 1000.0
        lines.append(f"E_inc       {e_gev.min():.3f} - {e_gev.max():.3f} GeV (median {np.median(e_gev):.3f})")
        q = np.percentile(feats.e_ratio, [16, 50, 84])
        lines.append(
            f"E_tot/E_inc mean {feats.e_ratio.mean():.4f}  std {feats.e_ratio.std():.4f}  "
            f"16/50/84% {q[0]:.4f} / {q[1]:.4f} / {q[2]:.4f}"
        )
        lines.append("layer  mean energy [MeV]")
        for layer, value in enumerate(feats.e_layer.mean(axis=0)):
            lines.append(f"{layer:5d}  {value:12.3f}")
    return "\n".join(lines), problems


def run(args: argparse.Namespace) -> int:
    text, problems = summarise(args.file, args.geometry, args.max_showers)
    print(text)
    if problems:
        print("problems:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("valid       yes")
    return 0
