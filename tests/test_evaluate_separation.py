"""Separation power and CaloChallenge binning on hand-built samples (values computed by hand)."""

import numpy as np
import pytest

from caloforge.evaluate import feature_histograms, separation_power, voxel_histogram
from caloforge.evaluate.histograms import feature_edges
from caloforge.features import compute_features
from caloforge.geometry import CylindricalReadout, get_geometry


def test_separation_power_hand_values():
    # p = (1/4, 3/4), q = (3/4, 1/4): 1/2 * 2 * (1/2)^2 / 1 = 1/4
    assert separation_power([1, 3], [3, 1]) == pytest.approx(0.25)
    assert separation_power([5, 0], [0, 7]) == pytest.approx(1.0)  # disjoint
    assert separation_power([2, 4, 6], [1, 2, 3]) == pytest.approx(0.0)  # same shape, other normalisation
    # p = (1, 0), q = (1/2, 1/2): 1/2 * ((1/2)^2 / (3/2) + (1/2)^2 / (1/2)) = 1/3
    assert separation_power([10, 0], [4, 4]) == pytest.approx(1.0 / 3.0)
    assert separation_power([0, 0], [0, 0]) == 0.0
    with pytest.raises(ValueError):
        separation_power([1, 2], [1, 2, 3])


def test_challenge_binning_ds2():
    geo = get_geometry("ds2")
    np.testing.assert_allclose(feature_edges("E_ratio", geo, None, np.ones(3), 0.01515), np.linspace(0.5, 1.5, 31))
    ref = np.array([0.0, 3.0, 200.0])
    np.testing.assert_allclose(feature_edges("E_layer", geo, 4, ref, 0.01515),
                               np.logspace(np.log10(0.01515), np.log10(200.0), 40))
    np.testing.assert_allclose(feature_edges("EC_eta", geo, 4, ref, 0.01515), np.linspace(-30, 30, 51))
    np.testing.assert_allclose(feature_edges("width_phi", geo, 4, ref, 0.01515), np.linspace(0, 30, 51))
    np.testing.assert_allclose(feature_edges("sparsity", geo, 4, ref, 0.01515), np.linspace(0, 1, 20))
    ds1 = get_geometry("ds1-pions")
    np.testing.assert_allclose(feature_edges("EC_phi", ds1, 12, ref, 1.0), np.linspace(-500, 500, 51))
    np.testing.assert_allclose(feature_edges("width_eta", ds1, 1, ref, 1.0), np.linspace(0, 100, 51))


def _one_voxel_showers(geo, layer_energies):
    """Showers with all energy of layer l in one voxel (alpha 0, r 0): (N, L) MeV -> (N, V)."""
    showers = np.zeros((len(layer_energies), geo.n_voxels), np.float32)
    for layer in range(geo.n_layers):
        showers[:, geo.flat_index(layer, 0, 0)] = layer_energies[:, layer]
    return showers


def test_feature_separation_power_hand_built():
    geo = CylindricalReadout.regular("toy", 2, 4, 3, 10.0)
    e_inc = np.full(4, 100.0, np.float32)
    # E_total/E_inc: reference 0.95 x3 and 1.25 x1, generated 0.95 x2 and 1.25 x2:
    # p = (3/4, 1/4), q = (1/2, 1/2) -> S = 1/2 ((1/4)^2 / (5/4) + (1/4)^2 / (3/4)) = 1/15
    ref = _one_voxel_showers(geo, np.array([[50, 45], [50, 45], [50, 45], [80, 45]], np.float32))
    gen = _one_voxel_showers(geo, np.array([[50, 45], [50, 45], [80, 45], [80, 45]], np.float32))
    hists = {h.name: h for h in feature_histograms(compute_features(e_inc, ref, geo), compute_features(e_inc, gen, geo),
                                                    geo, 0.01515)}
    assert hists["E_ratio"].separation_power == pytest.approx(1.0 / 15.0)
    # layer 1 identical -> 0; layer 0 the same 3:1 vs 2:2 split (80 MeV = last edge, included)
    assert hists["E_layer_01"].separation_power == pytest.approx(0.0)
    assert hists["E_layer_00"].separation_power == pytest.approx(1.0 / 15.0)
    assert hists["E_layer_00"].reference.sum() == 4
    # every shower is one voxel per layer: 1 - sparsity = 1/12 everywhere -> identical
    assert hists["sparsity_layer_00"].separation_power == 0.0
    assert set(hists) >= {"EC_eta_layer_00", "EC_phi_layer_01", "EC_r_layer_00", "width_r_layer_01"}


def test_empty_layers_fall_out_of_range():
    """Layer energies below the threshold (zero) are not counted, as in the challenge."""
    geo = CylindricalReadout.regular("toy", 1, 2, 2, 10.0)
    e_inc = np.full(4, 100.0, np.float32)
    ref = _one_voxel_showers(geo, np.array([[10.0], [10.0], [0.0], [0.0]], np.float32))
    gen = _one_voxel_showers(geo, np.array([[10.0], [10.0], [10.0], [10.0]], np.float32))
    hists = {h.name: h for h in feature_histograms(compute_features(e_inc, ref, geo), compute_features(e_inc, gen, geo),
                                                    geo, 0.01515)}
    assert hists["E_layer_00"].reference.sum() == 2 and hists["E_layer_00"].generated.sum() == 4
    assert hists["E_layer_00"].separation_power == pytest.approx(0.0)


def test_voxel_histogram_counts_and_range():
    ref = np.array([[0.0, 0.02, 1.0, 100.0]], np.float32)
    gen = np.array([[0.0, 0.0, 1.0, 150.0]], np.float32)  # 150 MeV lies beyond the reference maximum
    h = voxel_histogram(ref, gen, 0.01515)
    np.testing.assert_allclose(h.edges, np.logspace(np.log10(0.01515), np.log10(100.0), 50), rtol=1e-12)
    assert h.reference.sum() == 3 and h.generated.sum() == 1
    assert h.separation_power == pytest.approx(0.5 * ((1 / 3 - 1) ** 2 / (4 / 3) + 2 * (1 / 3) ** 2 / (1 / 3)))
