"""Feature histograms with the CaloChallenge binning and their separation power.

Separation power (triangular discrimination; arXiv:2009.03796 eq. 15, CaloChallenge
arXiv:2410.21611): for histograms normalised to unit sum over their in-range entries,
``S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)``; 0 for identical and 1 for disjoint histograms.

Binning follows the challenge's final ``evaluate_plotting_helper.py``; the edges of the
energy-like features start at the cell threshold, so empty layers / voxels fall out of range
and are not counted (as in the challenge). The range of the voxel and layer spectra ends at the
*reference's* maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caloforge.features import ShowerFeatures
from caloforge.geometry import CylindricalReadout

#: feature families in plotting order: (family, attribute of ShowerFeatures, x-axis label)
FAMILIES = (
    ("E_layer", "e_layer", "layer energy [MeV]"),
    ("EC_eta", "ec_eta", r"centre of energy $\eta$ [mm]"),
    ("EC_phi", "ec_phi", r"centre of energy $\phi$ [mm]"),
    ("EC_r", "ec_r", "centre of energy r [mm]"),
    ("width_eta", "width_eta", r"width $\eta$ [mm]"),
    ("width_phi", "width_phi", r"width $\phi$ [mm]"),
    ("width_r", "width_r", "width r [mm]"),
    ("sparsity", "sparsity", "fraction of voxels above threshold"),
)
#: ds2 outer radius 41.85 mm -> the challenge's +-30 mm centre / 0-30 mm width ranges
_RANGE_FRACTION = 30.0 / 41.85


@dataclass
class FeatureHistogram:
    """Histograms of one feature for both samples.

    ``edges`` (B + 1,) bin edges in the feature's unit; ``reference``/``generated`` (B,) raw counts
    (int64, in-range entries only); ``layer`` the readout layer (None for global features).
    """

    name: str
    family: str
    layer: int | None
    edges: np.ndarray
    reference: np.ndarray
    generated: np.ndarray
    xlabel: str
    log_x: bool = False

    @property
    def separation_power(self) -> float:
        return separation_power(self.reference, self.generated)


def separation_power(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """``1/2 sum (p - q)^2 / (p + q)`` of two histograms normalised to unit sum (arXiv:2009.03796).

    ``counts_a``, ``counts_b``: (B,) non-negative bin contents (counts or densities x widths). An
    empty histogram stays all-zero (then S = 0.5 against any non-empty one, 0 against another empty).
    The 1e-16 in the denominator is the challenge's guard for bins empty in both.
    """
    a = np.asarray(counts_a, dtype=np.float64)
    b = np.asarray(counts_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"histograms differ in shape: {a.shape} vs {b.shape}")
    p = a / a.sum() if a.sum() > 0 else a
    q = b / b.sum() if b.sum() > 0 else b
    return float(0.5 * np.sum((p - q) ** 2 / (p + q + 1e-16)))


def _is_ds1(geometry: CylindricalReadout) -> bool:
    return geometry.name.startswith("ds1")


def _log_edges(lo: float, reference_max: float, n_edges: int) -> np.ndarray:
    """``np.logspace`` from ``lo`` to the reference maximum, end points exact (``10**log10(x)``
    may round below x and drop the largest reference entry)."""
    hi = reference_max if reference_max > lo else lo * 10.0
    edges = np.logspace(np.log10(lo), np.log10(hi), n_edges)
    edges[0], edges[-1] = lo, hi
    return edges


def _spatial_limits(geometry: CylindricalReadout, layer: int) -> tuple[float, float]:
    """(centre half-range, width range) in mm for a layer, as in the challenge for its presets."""
    if _is_ds1(geometry):
        return (500.0, 400.0) if layer in (12, 13) else (100.0, 100.0)
    if geometry.name in ("ds2", "ds3"):
        return 30.0, 30.0
    r_outer = float(geometry.layers[layer].r_edges[-1])
    lim = _RANGE_FRACTION * r_outer
    return lim, lim


def feature_edges(family: str, geometry: CylindricalReadout, layer: int | None, reference_values: np.ndarray,
                  threshold_mev: float) -> np.ndarray:
    """Bin edges of a feature family (challenge binning; see module doc).

    ``reference_values``: (N,) reference feature values (sets the upper end of energy spectra);
    ``threshold_mev``: lower end of energy spectra (the smallest positive reference value if 0).
    """
    if family == "E_ratio":
        return np.linspace(0.5, 1.5, 31)
    if family in ("E_layer", "voxel_energy"):
        values = np.asarray(reference_values, dtype=np.float64)
        lo = threshold_mev
        if lo <= 0:
            positive = values[values > 0]
            lo = float(positive.min()) if positive.size else 1e-3
        return _log_edges(lo, float(values.max()) if values.size else lo, 40 if family == "E_layer" else 50)
    if family == "sparsity":
        return np.linspace(0.0, 1.0, 20)
    assert layer is not None
    centre, width = _spatial_limits(geometry, layer)
    if family in ("EC_eta", "EC_phi"):
        return np.linspace(-centre, centre, 51)
    if family == "EC_r":
        return np.linspace(0.0, centre, 51)
    if family in ("width_eta", "width_phi", "width_r"):
        return np.linspace(0.0, width, 51)
    raise ValueError(f"unknown feature family {family!r}")


def _histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.histogram(np.asarray(values, dtype=np.float64), bins=edges)[0].astype(np.int64)


def feature_histograms(reference: ShowerFeatures, generated: ShowerFeatures, geometry: CylindricalReadout,
                       threshold_mev: float) -> list[FeatureHistogram]:
    """Histograms of every high-level feature: ``E_ratio``, then per layer ``E_layer``, centres
    and widths (eta, phi, r; alpha-binned layers only) and ``sparsity`` (histogrammed as the
    fraction of voxels above threshold, 1 - sparsity, as the challenge plots it).
    Names match :meth:`ShowerFeatures.as_dict`. Layers without voxels are skipped."""
    ratio_edges = feature_edges("E_ratio", geometry, None, reference.e_ratio, threshold_mev)
    out = [FeatureHistogram("E_ratio", "E_ratio", None, ratio_edges, _histogram(reference.e_ratio, ratio_edges),
                            _histogram(generated.e_ratio, ratio_edges), r"$E_{tot} / E_{inc}$")]
    has_voxels = geometry.voxels_per_layer > 0
    for family, attr, xlabel in FAMILIES:
        ref_arr, gen_arr = getattr(reference, attr), getattr(generated, attr)
        if family in ("E_layer", "sparsity"):
            layers = [int(l) for l in np.flatnonzero(has_voxels)]
            columns = layers
        else:
            layers = [int(l) for l in reference.layers_alpha]
            columns = list(range(len(layers)))
        for layer, col in zip(layers, columns):
            ref_v, gen_v = ref_arr[:, col], gen_arr[:, col]
            if family == "sparsity":
                ref_v, gen_v = 1.0 - ref_v, 1.0 - gen_v
            edges = feature_edges(family, geometry, layer, ref_v, threshold_mev)
            name = f"E_layer_{layer:02d}" if family == "E_layer" else f"{family}_layer_{layer:02d}"
            out.append(FeatureHistogram(name, family, layer, edges, _histogram(ref_v, edges), _histogram(gen_v, edges),
                                        xlabel, log_x=family == "E_layer"))
    return out


def voxel_histogram(reference_showers: np.ndarray, generated_showers: np.ndarray, threshold_mev: float,
                    chunk_size: int = 1024) -> FeatureHistogram:
    """Spectrum of all voxel energies (MeV) of both samples, 49 log bins from the threshold to the
    reference's largest voxel. ``*_showers``: (N, V) float32 MeV, thresholded. Counted in chunks
    (bounded memory); bins are uniform in log10 so counting histograms log10(E)."""
    ref_max = float(reference_showers.max()) if reference_showers.size else 0.0
    lo = threshold_mev
    if lo <= 0:
        positive = reference_showers[reference_showers > 0]
        lo = float(positive.min()) if positive.size else 1e-3
    edges = _log_edges(lo, ref_max, 50)
    log_edges = np.linspace(np.log10(edges[0]), np.log10(edges[-1]), edges.size)

    def count(showers: np.ndarray) -> np.ndarray:
        total = np.zeros(edges.size - 1, np.int64)
        for start in range(0, showers.shape[0], chunk_size):
            chunk = showers[start:start + chunk_size]
            values = chunk[chunk > 0].astype(np.float64)
            total += np.histogram(np.log10(values), bins=log_edges)[0]
        return total

    return FeatureHistogram("voxel_energy", "voxel_energy", None, edges, count(reference_showers),
                            count(generated_showers), "voxel energy [MeV]", log_x=True)
