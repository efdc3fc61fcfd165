"""FPD / KPD against analytic values and the published (jetnet 0.2.5) formulas on small arrays."""

import numpy as np
import pytest
from scipy import linalg

from caloforge.evaluate import fpd, fpd_batch_sizes, frechet_distance, kpd, mmd_poly_unbiased, normalise_features


def _frechet_jetnet_formula(mu1, s1, mu2, s2):
    """The published formula: |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrtm(S1 S2)."""
    covmean = linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def test_frechet_distance_of_two_gaussians_by_hand():
    # diagonal: 1^2 + 2^2 + (1 + 4 - 2*2) + (4 + 9 - 2*6) = 7
    assert frechet_distance([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([4.0, 9.0])) == pytest.approx(7.0)
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2
    assert frechet_distance([0.5], [[0.25]], [2.0], [[4.0]]) == pytest.approx(1.5**2 + 1.5**2)
    # singular covariance: a point mass against N(0, 1) -> 1
    assert frechet_distance([0.0], [[0.0]], [0.0], [[1.0]]) == pytest.approx(1.0)


def test_frechet_distance_matches_sqrtm_formula():
    rng = np.random.default_rng(3)
    for d in (2, 7, 30):
        a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
        s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_frechet_jetnet_formula(mu1, s1, mu2, s2), rel=1e-8)


def test_mmd_hand_computed():
    # k(a, b) = (a b + 1)^4 for D = 1: XX pair k(1,2) = 81, YY pair k(0,3) = 1,
    # XY mean (k(1,0) + k(1,3) + k(2,0) + k(2,3)) / 4 = (1 + 256 + 1 + 2401) / 4 = 664.75
    assert mmd_poly_unbiased(np.array([[1.0], [2.0]]), np.array([[0.0], [3.0]])) == pytest.approx(81 + 1 - 2 * 664.75)
    # D = 2, x = {(1,0),(0,1)}, y = {(1,1),(1,1)}: XX (0/2+1)^4 = 1, YY (2/2+1)^4 = 16, XY (1/2+1)^4
    val = mmd_poly_unbiased(np.array([[1.0, 0], [0, 1]]), np.array([[1.0, 1], [1, 1]]))
    assert val == pytest.approx(1 + 16 - 2 * 1.5**4)


def test_mmd_blocks_and_duplicate_pairs():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
    assert mmd_poly_unbiased(x, y, block=7) == pytest.approx(mmd_poly_unbiased(x, y, block=1024), rel=1e-6)
    # drawing the same pool twice with the duplicate pairs left out equals the distinct-pair U-statistic
    idx = np.array([0, 1, 1, 2, 3, 3, 3])
    pool = rng.normal(size=(4, 3))
    got = mmd_poly_unbiased(pool[idx], y, x_index=idx)
    def kern(a, b):
        return (a @ b.T / 3 + 1) ** 4

    x_draw = pool[idx]
    distinct = idx[:, None] != idx[None, :]  # pairs of different pool points only
    yy = kern(y, y)[~np.eye(len(y), dtype=bool)].mean()
    expected = kern(x_draw, x_draw)[distinct].mean() + yy - 2 * kern(x_draw, y).mean()
    assert got == pytest.approx(expected, rel=1e-6)  # float32 kernels, float64 sums


def test_mmd_float32_kernels_match_float64():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(700, 40)) / 4, rng.normal(0.02, 1.0, size=(600, 40)) / 4

    def mean_k(a, b, same):
        k = (a @ b.T / a.shape[1] + 1.0) ** 4
        return k[~np.eye(len(a), dtype=bool)].mean() if same else k.mean()

    exact = mean_k(x, x, True) + mean_k(y, y, True) - 2 * mean_k(x, y, False)
    assert mmd_poly_unbiased(x, y, block=256) == pytest.approx(exact, abs=1e-8)


def test_normalise_by_reference_max_abs():
    x, y = normalise_features(np.array([[2.0, 0.0], [-4.0, 0.0]]), np.array([[8.0, 3.0]]))
    np.testing.assert_allclose(x, [[0.5, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(y, [[2.0, 3.0]])  # all-zero reference feature left unscaled


def test_fpd_batch_sizes_adapt():
    # enough showers: exactly jetnet's sizes (1/N evenly spaced, truncated to int: 50000 -> 49999)
    np.testing.assert_array_equal(fpd_batch_sizes(100_000, 10_000, 50_000, 10),
                                  (1 / np.linspace(1 / 10_000, 1 / 50_000, 10)).astype(np.int32))
    sizes = fpd_batch_sizes(12_000, 10_000, 50_000, 10)
    assert sizes[0] == 6_000 and sizes[-1] in (11_999, 12_000) and len(sizes) == 10
    inv = 1.0 / sizes
    np.testing.assert_allclose(np.diff(inv), np.diff(inv)[0], rtol=1e-2)  # evenly spaced in 1/N


def test_fpd_identical_zero_and_shift_analytic():
    rng = np.random.default_rng(1)
    d, n = 4, 20_000
    ref, gen = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    same = fpd(ref, gen, min_samples=2_000, max_samples=10_000, num_batches=5, normalise=False, seed=1)
    assert same.value < 0.005
    shifted = fpd(ref, gen + 0.5, min_samples=2_000, max_samples=10_000, num_batches=5, normalise=False, seed=1)
    assert shifted.value == pytest.approx(d * 0.25, abs=0.03)  # |delta mu|^2, same covariance
    assert shifted.error < 0.05 and len(shifted.batch_sizes) == 10


def test_fpd_kpd_grow_with_shift():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(3_000, 6))
    gens = [rng.normal(size=(3_000, 6)) + s for s in (0.0, 0.3, 1.0)]
    f = [fpd(ref, g, min_samples=1_000, num_batches=4, seed=0).value for g in gens]
    k = [kpd(ref, g, num_batches=5, batch_size=1_000, seed=0) for g in gens]
    assert f[0] < 1e-3 < f[1] < f[2]
    assert abs(k[0].value) < 3 * k[0].error + 1e-5
    assert k[0].value < k[1].value < k[2].value and k[1].value > 5 * k[1].error


def test_kpd_reproducible_and_jetnet_error_definition():
    rng = np.random.default_rng(4)
    ref, gen = rng.normal(size=(500, 3)), rng.normal(size=(500, 3)) + 0.2
    a = kpd(ref, gen, num_batches=6, batch_size=200, seed=9)
    b = kpd(ref, gen, num_batches=6, batch_size=200, seed=9)
    assert a.values == b.values and len(a.values) == 6
    assert a.value == pytest.approx(np.median(a.values))
    lo, hi = np.percentile(a.values, [16.275, 83.725])
    assert a.error == pytest.approx((hi - lo) / 2)
