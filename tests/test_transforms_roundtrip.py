"""Preprocessing: exact inverse (to float32 precision), threshold, fitted state."""

import numpy as np
import pytest
import torch
from diffusion_helpers import toy_showers

from caloforge.geometry import get_geometry
from caloforge.transforms import EnergyScaler, LayerEnergyPreprocessor, VoxelPreprocessor


@pytest.fixture(scope="module")
def data():
    geometry = get_geometry("ds2")
    e, s = toy_showers(64, geometry, seed=3)
    s[0, :144] = 0.0  # an empty layer must survive the round trip
    return geometry, torch.from_numpy(e), torch.from_numpy(s)


@pytest.mark.parametrize("norm", ["layer", "incident"])
def test_voxel_round_trip_is_exact(data, norm):
    geometry, e, s = data
    pre = VoxelPreprocessor(geometry, norm=norm).fit(e, s)
    z = pre.transform(e, s)
    # standardised: every (layer, r) group has mean 0 and std 1 on the fitted data
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std()) - 1.0) < 1e-3
    layers = pre.layer_energies(s) if norm == "layer" else None
    back = pre.inverse_transform(z, e, layers, threshold=False)
    scale = layers[:, pre.voxel_layer] if norm == "layer" else e.expand_as(s)
    # stated tolerance: |x' - x| <= 1e-4 x + 1e-6 * (layer or incident energy), float32
    assert torch.all((back - s).abs() <= 1e-4 * s + 1e-6 * scale)
    assert torch.all(back[0, :144] == 0)


def test_threshold_zeroes_small_voxels(data):
    geometry, e, s = data
    pre = VoxelPreprocessor(geometry, norm="incident", threshold_mev=0.5).fit(e, s)
    back = pre.inverse_transform(pre.transform(e, s), e)
    assert torch.all(back[s < 0.499] == 0)
    big = s > 0.51
    assert torch.allclose(back[big], s[big], rtol=1e-4)


def test_layer_energy_round_trip(data):
    geometry, e, s = data
    pre = VoxelPreprocessor(geometry).fit(e, s)
    layers = pre.layer_energies(s)
    lp = LayerEnergyPreprocessor(geometry.n_layers).fit(e, layers)
    y = lp.transform(e, layers)
    assert y.shape == (64, geometry.n_layers + 1)
    back = lp.inverse_transform(y, e)
    total = layers.sum(1, keepdim=True)
    assert torch.all((back - layers).abs() <= 1e-5 * total)


def test_energy_scaler_round_trip(data):
    _, e, _ = data
    scaler = EnergyScaler().fit(e)
    c = scaler.transform(e)
    assert abs(float(c.mean())) < 1e-5 and abs(float(c.std(unbiased=False)) - 1) < 1e-4
    assert torch.allclose(scaler.inverse_transform(c), e, rtol=1e-5)


def test_unfitted_transform_refuses(data):
    geometry, e, s = data
    with pytest.raises(RuntimeError, match="not fitted"):
        VoxelPreprocessor(geometry).transform(e, s)
    with pytest.raises(ValueError, match="6480"):
        VoxelPreprocessor(geometry).fit(e, s[:, :100])


def test_fitted_constants_are_buffers(data):
    geometry, e, s = data
    pre = VoxelPreprocessor(geometry).fit(e, s)
    state = pre.state_dict()
    assert {"mean_", "std_", "fitted_"} <= set(state)
    fresh = VoxelPreprocessor(geometry)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.transform(e, s), pre.transform(e, s))
    assert np.isclose(pre.threshold_mev, 15.15e-3)
