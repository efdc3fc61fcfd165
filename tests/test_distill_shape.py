"""The lateral-shape data term: features equal the CaloChallenge definitions, the marginal MMD is
unbiased and sees a shift, and fine-tuning a student with it pulls its one-step samples towards
the real showers' shapes."""

import numpy as np
import pytest
import torch
from diffusion_helpers import small_geometry, toy_showers

from caloforge.diffusion.model import ModelConfig, ShowerDiffusionModel
from caloforge.distill.shape import LateralShape, marginal_mmd
from caloforge.features import compute_features


@pytest.fixture(scope="module")
def encoded():
    geometry = small_geometry()
    energies, showers = toy_showers(300, geometry, seed=5)
    model = ShowerDiffusionModel(geometry, ModelConfig())
    model.fit_preprocessing(torch.from_numpy(energies), torch.from_numpy(showers))
    return model, energies, showers, model.encode(torch.from_numpy(energies), torch.from_numpy(showers))


def test_features_are_the_challenge_centre_and_width_in_r(encoded):
    model, energies, showers, batch = encoded
    shape = LateralShape(model, ("radial", "alpha", "concentration"))
    masks = shape.masks(batch.voxels)
    raw = shape.raw(batch.voxels, masks)
    ref = compute_features(energies, showers, model.geometry, threshold_mev=0)
    n_layers = model.geometry.n_layers
    has_energy = ref.e_layer > 0
    assert np.array_equal(masks["radial"].numpy(), np.tile(has_energy, 2))
    radial = raw["radial"].numpy()
    np.testing.assert_allclose(radial[:, :n_layers][has_energy], ref.ec_r[has_energy], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(radial[:, n_layers:][has_energy], ref.width_r[has_energy], rtol=1e-3, atol=2e-2)
    assert np.all(radial[:, :n_layers][~has_energy] == 0)
    # alpha: coefficient of variation of each (layer, r) ring over its alpha bins, straight from the MeV showers
    g = model.geometry
    order = np.lexsort((g.voxel_alpha, g.voxel_r, g.voxel_layer))
    rings = showers[:, order].reshape(len(showers), g.n_layers * 4, 8)  # (N, rings, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = rings.std(2) / rings.mean(2)
    mask = masks["alpha"].numpy()
    assert mask.shape == cv.shape and np.array_equal(mask, rings.sum(2) > 0)
    np.testing.assert_allclose(raw["alpha"].numpy()[mask], cv[mask], rtol=2e-3, atol=2e-3)
    # concentration: ln sum f^2 of each layer's energy fractions
    layers = showers[:, order].reshape(len(showers), g.n_layers, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        conc = np.log(((layers / layers.sum(2, keepdims=True)) ** 2).sum(2))
    np.testing.assert_allclose(raw["concentration"].numpy()[has_energy], conc[has_energy], rtol=1e-3, atol=1e-3)


def test_standardised_features_and_their_gradient(encoded):
    model, _, _, batch = encoded
    shape = LateralShape(model, ("radial", "alpha", "concentration"))
    masks = shape.masks(batch.voxels)
    shape.fit(batch.voxels, masks)
    for family, feats in shape.features(batch.voxels, masks).items():
        count = masks[family].sum(0).clamp_min(1)
        assert torch.allclose(feats.sum(0) / count, torch.zeros(feats.shape[1]), atol=1e-3), family
        z = batch.voxels[:8].clone().requires_grad_(True)
        shape.features(z, {k: m[:8] for k, m in masks.items()})[family].sum().backward()
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0, family
    with pytest.raises(ValueError, match="non-empty subset"):
        LateralShape(model, ("width",))


def test_marginal_mmd_is_unbiased_and_sees_a_shift():
    gen = torch.Generator().manual_seed(0)
    same = [float(marginal_mmd(torch.randn(32, 10, generator=gen), torch.randn(32, 10, generator=gen)))
            for _ in range(200)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-3, (np.mean(same), np.std(same))
    a, b = torch.randn(64, 10, generator=gen), torch.randn(64, 10, generator=gen)
    shifted = [float(marginal_mmd(a, b + d)) for d in (0.0, 0.2, 0.5, 1.0)]
    assert shifted == sorted(shifted) and shifted[-1] > 0.2, shifted
    wider = float(marginal_mmd(a, 1.5 * b))
    assert wider > 5 * abs(shifted[0]), (wider, shifted[0])
    with pytest.raises(ValueError):
        marginal_mmd(a[:1], b)


def test_shipped_distillation_configs_load():
    from pathlib import Path

    from caloforge.distill import load_distill_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    assert load_distill_config(configs / "distill_ds2.yaml").shape_weight == 0
    tuned = load_distill_config(configs / "shape_tune_ds2.yaml")
    assert tuned.shape_weight > 0 and tuned.shape_features == ("radial", "alpha") and tuned.shape_steps == (1,)
