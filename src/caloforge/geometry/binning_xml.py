"""Read and write CaloChallenge binning XML files.

Format: ``<Bins><Bin pid=.. name=..><Layer id=.. r_edges="0,4.65,..." n_bin_alpha="16"/>...``
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from caloforge.errors import InputFileError
from caloforge.geometry.readout import CylindricalReadout, LayerBinning


def load_binning_xml(path: str | Path, name: str | None = None) -> CylindricalReadout:
    """Parse a CaloChallenge binning XML into a :class:`CylindricalReadout`.

    Layers are ordered by their ``id`` attribute; ``name`` defaults to the file stem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: binning file not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputFileError(f"{path}: not valid XML ({exc})") from None
    bins = root.findall("Bin") if root.tag != "Bin" else [root]
    if len(bins) != 1:
        raise InputFileError(f"{path}: expected exactly one <Bin> element, found {len(bins)}")
    bin_el = bins[0]
    entries = []
    for layer_el in bin_el.findall("Layer"):
        try:
            layer_id = int(layer_el.attrib["id"])
            edges = np.array([float(v) for v in layer_el.attrib["r_edges"].split(",") if v.strip()])
            n_alpha = int(layer_el.attrib.get("n_bin_alpha", 1))
        except (KeyError, ValueError) as exc:
            raise InputFileError(f"{path}: <Layer> element malformed ({exc})") from None
        entries.append((layer_id, LayerBinning(edges, n_alpha)))
    if not entries:
        raise InputFileError(f"{path}: no <Layer> elements")
    entries.sort(key=lambda e: e[0])
    ids = [e[0] for e in entries]
    if ids != list(range(len(ids))):
        raise InputFileError(f"{path}: layer ids must be 0..{len(ids) - 1}, got {ids}")
    return CylindricalReadout(name or path.stem, tuple(e[1] for e in entries), bin_el.attrib.get("name", ""))


def write_binning_xml(geometry: CylindricalReadout, path: str | Path, pid: int = 11) -> Path:
    """Write ``geometry`` as a CaloChallenge binning XML (round-trips with :func:`load_binning_xml`)."""
    from caloforge.io.atomic import atomic_write_text

    lines = ["<Bins>", f'   <Bin pid="{pid}" name="{geometry.particle or "particle"}">']
    for i, lay in enumerate(geometry.layers):
        edges = ",".join(f"{v:g}" for v in lay.r_edges)
        lines.append(f'      <Layer id="{i}" r_edges="{edges}" n_bin_alpha="{lay.n_alpha}" />')
    lines += ["   </Bin>", "</Bins>", ""]
    return atomic_write_text(Path(path), "\n".join(lines))
