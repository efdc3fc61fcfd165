"""Concordance correlation coefficient (paired mode) against hand-computed values."""

import numpy as np
import pytest

from caloforge.evaluate import concordance_correlation, paired_metrics
from caloforge.geometry import CylindricalReadout


def test_ccc_hand_values():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert concordance_correlation(x, x) == pytest.approx(1.0)
    # y = x + 1: cov = var = 1.25, shift 1 -> 2 * 1.25 / (1.25 + 1.25 + 1) = 2.5 / 3.5
    assert concordance_correlation(x, x + 1) == pytest.approx(2.5 / 3.5)
    # y = 2x: cov 2.5, var_y 5, means 2.5 vs 5 -> 5 / (1.25 + 5 + 6.25) = 0.4
    assert concordance_correlation(x, 2 * x) == pytest.approx(0.4)
    assert concordance_correlation(x, -x + 5) == pytest.approx(-1.0)
    assert concordance_correlation(np.ones(3), np.ones(3)) == 1.0


def test_ccc_pooled_equals_flattened_and_per_column():
    rng = np.random.default_rng(0)
    x = rng.exponential(size=(50, 300))
    y = x * rng.normal(1.0, 0.2, size=x.shape) + 0.1
    pooled = concordance_correlation(x, y)
    xf, yf = x.ravel(), y.ravel()
    direct = 2 * np.mean((xf - xf.mean()) * (yf - yf.mean())) / (xf.var() + yf.var() + (xf.mean() - yf.mean()) ** 2)
    assert pooled == pytest.approx(direct, rel=1e-10)
    cols = concordance_correlation(x, y, per_column=True)
    assert cols.shape == (300,) and cols[7] == pytest.approx(concordance_correlation(x[:, 7], y[:, 7]))


def test_paired_metrics_keys_and_values():
    geo = CylindricalReadout.regular("toy", 3, 2, 2, 10.0)
    rng = np.random.default_rng(1)
    ref = rng.exponential(size=(40, geo.n_voxels)).astype(np.float32)
    out = paired_metrics(ref, ref, geo)
    assert out["ccc_voxels"] == pytest.approx(1.0) and out["ccc_layers"] == pytest.approx(1.0)
    assert out["ccc_layer"] == pytest.approx([1.0, 1.0, 1.0]) and out["ccc_e_total"] == pytest.approx(1.0)
    worse = paired_metrics(ref, ref * 1.5, geo)
    assert worse["ccc_voxels"] < 0.9 and worse["ccc_e_total"] < 0.9 and out["n_showers"] == 40
