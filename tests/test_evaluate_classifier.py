"""Classifier two-sample test: AUC ~0.5 on one distribution, ~1 on clearly different ones."""

import numpy as np
import pytest

from caloforge.evaluate import ClassifierConfig, classifier_test, high_level_input, low_level_input
from caloforge.features import compute_features
from caloforge.geometry import CylindricalReadout, get_geometry

SMALL = ClassifierConfig(hidden_layers=2, width=32, epochs=15, patience=4, batch_size=200, lr=1e-3)


def test_inputs_follow_challenge_definition():
    geo = CylindricalReadout.regular("toy", 2, 2, 2, 10.0)
    showers = np.zeros((1, geo.n_voxels), np.float32)
    showers[0, geo.flat_index(0, 0, 0)] = 30.0  # r centre 5 mm, alpha centre -pi/2
    showers[0, geo.flat_index(1, 1, 1)] = 10.0  # r centre 15 mm, alpha centre +pi/2
    x = low_level_input(np.array([100.0]), showers)
    assert x.shape == (1, 1 + geo.n_voxels)
    assert x[0, 0] == pytest.approx(2.0) and x[0, 1] == pytest.approx(0.3) and x[0, 1:].sum() == pytest.approx(0.4)
    h = high_level_input(compute_features(np.array([100.0]), showers, geo))
    # [log10 E_inc, log10(E_layer + 1e-8) x2, EC_eta/100 x2, EC_phi/100 x2, width_eta/100 x2, width_phi/100 x2]
    assert h.shape == (1, 1 + 2 + 4 * 2)
    np.testing.assert_allclose(h[0, :3], [2.0, np.log10(30.0), 1.0], rtol=1e-6)
    np.testing.assert_allclose(h[0, 3:7], [0.0, 0.0, -0.05, 0.15], atol=1e-7)  # eta ~ 0, phi = -5 and +15 mm
    np.testing.assert_allclose(h[0, 7:], 0.0, atol=1e-7)  # one voxel per layer: zero widths


def test_high_level_input_skips_layers_without_voxels():
    geo = get_geometry("ds1-photons")  # 24 layers, 5 with voxels, 2 alpha-binned
    showers = np.ones((3, geo.n_voxels), np.float32)
    h = high_level_input(compute_features(np.full(3, 1000.0), showers, geo), geo)
    assert h.shape == (3, 1 + 5 + 4 * 2) and np.isfinite(h).all()
    assert high_level_input(compute_features(np.full(3, 1000.0), showers, geo)).shape == (3, 1 + 24 + 4 * 2)


def test_auc_half_on_two_halves_of_one_sample():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(6000, 8)).astype(np.float32)
    data[:, 0] = rng.exponential(1.0, 6000)  # a skewed feature as well
    result = classifier_test(data[:3000], data[3000:], SMALL, seed=1, progress=False, threads=1)
    assert abs(result.auc - 0.5) < 0.05
    assert abs(result.jsd) < 0.05
    assert result.n_test == 1200 and result.n_train == 3600 and result.n_validation == 1200
    assert len(result.aucs) == SMALL.repeats and result.auc == pytest.approx(np.mean(result.aucs))
    assert all(1 <= b <= r <= SMALL.epochs for b, r in zip(result.best_epochs, result.epochs_run))


def test_auc_high_on_clearly_different_samples():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(2000, 8)).astype(np.float32)
    gen = (rng.normal(size=(2500, 8)) + 1.0).astype(np.float32)  # shifted by 1 sigma in 8 features: best AUC 0.977
    result = classifier_test(ref, gen, SMALL, seed=2, progress=False, threads=1)
    assert result.auc > 0.95
    assert result.jsd > 0.5
    assert result.n_train == 2 * 1200  # larger sample subsampled to the smaller one (balanced classes)


def test_classifier_reproducible_with_seed():
    rng = np.random.default_rng(2)
    ref, gen = rng.normal(size=(800, 5)).astype(np.float32), (rng.normal(size=(800, 5)) + 0.3).astype(np.float32)
    state = np.random.get_state()[1][:4].copy()
    a = classifier_test(ref, gen, SMALL, seed=5, progress=False, threads=1)
    b = classifier_test(ref, gen, SMALL, seed=5, progress=False, threads=1)
    c = classifier_test(ref, gen, SMALL, seed=6, progress=False, threads=1)
    assert a == b and a != c
    np.testing.assert_array_equal(np.random.get_state()[1][:4], state)  # global RNG untouched


def test_repeats_average_and_standardising_finds_a_badly_scaled_difference():
    """The difference sits in a feature 1e-3 the size of the others (as EC/100 next to log energies):
    the standardised classifier finds it, the raw one within the same patience does not (or less)."""
    rng = np.random.default_rng(7)
    n = 1500
    ref = rng.normal(size=(n, 6)) * np.array([30.0, 30.0, 30.0, 30.0, 30.0, 1e-3])
    gen = rng.normal(size=(n, 6)) * np.array([30.0, 30.0, 30.0, 30.0, 30.0, 1e-3])
    gen[:, 5] += 1.5e-3  # 1.5 sigma shift of the small feature: best AUC ~0.86
    cfg = ClassifierConfig(hidden_layers=2, width=32, epochs=15, patience=4, batch_size=200, lr=1e-3, repeats=3)
    std = classifier_test(ref.astype(np.float32), gen.astype(np.float32), cfg, seed=0, progress=False, threads=1)
    raw = classifier_test(ref.astype(np.float32), gen.astype(np.float32), cfg, seed=0, progress=False, threads=1,
                          standardize=False)
    assert len(std.aucs) == 3 and std.auc == pytest.approx(np.mean(std.aucs)) and std.auc_std >= 0
    assert std.auc > 0.8 and std.auc > raw.auc + 0.1
