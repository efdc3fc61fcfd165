import numpy as np
import pytest

from caloforge.features import compute_features, features_from_file
from caloforge.geometry import get_geometry
from caloforge.io import write_showers
from helpers import random_showers


def test_single_voxel_hit():
    geo = get_geometry("ds2")
    showers = np.zeros((1, geo.n_voxels), np.float32)
    showers[0, geo.flat_index(2, 4, 3)] = 100.0
    f = compute_features(np.array([1000.0]), showers, geo)
    assert f.e_layer[0, 2] == 100.0 and f.e_layer.sum() == 100.0
    assert f.e_ratio[0] == pytest.approx(0.1)
    alpha = -np.pi + 4.5 * 2 * np.pi / 16
    r = 3.5 * 4.65
    assert f.ec_eta[0, 2] == pytest.approx(r * np.cos(alpha), rel=1e-5)
    assert f.ec_phi[0, 2] == pytest.approx(r * np.sin(alpha), rel=1e-5)
    assert f.ec_r[0, 2] == pytest.approx(r, rel=1e-6)
    assert f.width_eta[0, 2] == 0.0 and f.width_r[0, 2] == 0.0
    assert f.ec_eta[0, 0] == 0.0  # empty layer -> 0
    assert f.sparsity[0, 2] == pytest.approx(143 / 144)
    assert f.sparsity[0, 0] == 1.0


def test_two_symmetric_hits():
    geo = get_geometry("ds2")
    showers = np.zeros((1, geo.n_voxels), np.float32)
    # alpha bins 0 and 8 are opposite (centres differ by pi), same r -> centre at origin
    showers[0, geo.flat_index(5, 0, 2)] = 50.0
    showers[0, geo.flat_index(5, 8, 2)] = 50.0
    f = compute_features(np.array([200.0]), showers, geo)
    r = 2.5 * 4.65
    alpha = -np.pi + 0.5 * 2 * np.pi / 16
    assert f.ec_eta[0, 5] == pytest.approx(0.0, abs=1e-5)
    assert f.ec_phi[0, 5] == pytest.approx(0.0, abs=1e-5)
    assert f.width_eta[0, 5] == pytest.approx(abs(r * np.cos(alpha)), rel=1e-5)
    assert f.width_phi[0, 5] == pytest.approx(abs(r * np.sin(alpha)), rel=1e-4)
    assert f.ec_r[0, 5] == pytest.approx(r) and f.width_r[0, 5] == pytest.approx(0.0, abs=1e-4)
    assert f.e_ratio[0] == pytest.approx(0.5)


def test_threshold_applied():
    geo = get_geometry("ds2")
    showers = np.zeros((1, geo.n_voxels), np.float32)
    showers[0, 0] = 0.015  # below 15.15 keV
    showers[0, 1] = 0.016
    f = compute_features(np.array([1.0]), showers, geo)
    assert f.e_total[0] == pytest.approx(0.016)
    assert compute_features(np.array([1.0]), showers, geo, threshold_mev=0).e_total[0] == pytest.approx(0.031)


def test_irregular_geometry_features():
    geo = get_geometry("ds1-photons")
    showers = np.zeros((1, geo.n_voxels), np.float32)
    showers[0, geo.flat_index(0, 0, 1)] = 10.0  # layer 0 is not alpha-binned
    showers[0, geo.flat_index(12, 0, 0)] = 5.0
    f = compute_features(np.array([100.0]), showers, geo)
    assert f.ec_eta.shape == (1, 2)  # layers 1 and 2 only
    assert f.e_layer[0, 0] == 10.0 and f.e_layer[0, 12] == 5.0
    assert "EC_eta_layer_01" in f.as_dict() and "EC_eta_layer_00" not in f.as_dict()


def test_streamed_features_equal_whole(tmp_path):
    geo = get_geometry("ds2")
    e, s = random_showers(300, geo.n_voxels, seed=5)
    path = write_showers(tmp_path / "a.h5", e, s)
    whole = compute_features(e, s, geo).as_dict()
    streamed = features_from_file(path, geo, chunk_size=64).as_dict()
    assert whole.keys() == streamed.keys()
    for key in whole:
        np.testing.assert_array_equal(whole[key], streamed[key], err_msg=key)
