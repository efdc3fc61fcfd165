"""Event-by-event agreement of paired samples (the same showers, e.g. FastSim vs its refinement).

Lin's concordance correlation coefficient (Biometrics 45 (1989) 255):
``CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2)`` with population (1/N) moments;
1 = identical, 0 = no agreement, -1 = perfect disagreement. Unlike Pearson's r it penalises
shifts and scale changes.
"""

from __future__ import annotations

import numpy as np

from caloforge.geometry import CylindricalReadout


def _ccc(mx, my, vx, vy, cxy):
    denom = vx + vy + (mx - my) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2.0 * cxy / np.where(denom > 0, denom, 1.0), 1.0)


def _column_moments(x: np.ndarray, y: np.ndarray, block: int = 256):
    """Per-column means, variances and covariance (population), float64, in column blocks."""
    cols = x.shape[1]
    out = np.zeros((5, cols))
    for c in range(0, cols, block):
        xs = x[:, c:c + block].astype(np.float64)
        ys = y[:, c:c + block].astype(np.float64)
        mx, my = xs.mean(axis=0), ys.mean(axis=0)
        dx, dy = xs - mx, ys - my
        out[:, c:c + block] = [mx, my, (dx * dx).mean(axis=0), (dy * dy).mean(axis=0), (dx * dy).mean(axis=0)]
    return out


def concordance_correlation(x: np.ndarray, y: np.ndarray, per_column: bool = False) -> np.ndarray | float:
    """CCC of ``x`` and ``y`` (same shape, (N,) or (N, C)), float64 moments.

    ``per_column``: one CCC per column (C,), else all entries pooled (a float). Pooled moments are
    combined exactly from per-column ones (law of total variance), so memory stays bounded.
    Where both are constant and equal (denominator 0) the CCC is 1.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch {x.shape} vs {y.shape}")
    if x.ndim == 1:
        x, y = x[:, None], y[:, None]
    mx, my, vx, vy, cxy = _column_moments(x, y)
    if per_column:
        return _ccc(mx, my, vx, vy, cxy)
    gx, gy = mx.mean(), my.mean()
    pooled_vx = vx.mean() + ((mx - gx) ** 2).mean()
    pooled_vy = vy.mean() + ((my - gy) ** 2).mean()
    pooled_c = cxy.mean() + ((mx - gx) * (my - gy)).mean()
    return float(_ccc(gx, gy, pooled_vx, pooled_vy, pooled_c))


def paired_metrics(reference_showers: np.ndarray, generated_showers: np.ndarray,
                   geometry: CylindricalReadout) -> dict:
    """CCCs of paired (N, V) MeV shower arrays (thresholded), generated vs reference.

    Keys: ``ccc_voxels`` (all N x V voxel energies pooled), ``ccc_voxels_median`` (median over
    voxels hit in either sample of the per-voxel CCC across showers), ``ccc_layers`` (all N x L
    layer energies pooled), ``ccc_layer`` (per layer; None for layers without voxels),
    ``ccc_e_total`` (total energies).
    """
    ref = np.asarray(reference_showers, dtype=np.float32)
    gen = np.asarray(generated_showers, dtype=np.float32)
    per_voxel = concordance_correlation(gen, ref, per_column=True)
    hit = (ref > 0).any(axis=0) | (gen > 0).any(axis=0)
    ref_layers = ref @ geometry.layer_matrix
    gen_layers = gen @ geometry.layer_matrix
    filled = geometry.voxels_per_layer > 0
    per_layer = concordance_correlation(gen_layers, ref_layers, per_column=True)
    return {
        "n_showers": int(ref.shape[0]),
        "ccc_voxels": concordance_correlation(gen, ref),
        "ccc_voxels_median": float(np.median(per_voxel[hit])) if hit.any() else 1.0,
        "ccc_layers": concordance_correlation(gen_layers[:, filled], ref_layers[:, filled]),
        "ccc_layer": [float(v) if f else None for v, f in zip(per_layer, filled)],
        "ccc_e_total": concordance_correlation(gen_layers.sum(axis=1), ref_layers.sum(axis=1)),
    }
