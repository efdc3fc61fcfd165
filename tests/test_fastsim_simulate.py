"""FastSim generation: analytic profiles, voxel mapping, reproducibility, conditioning."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.special import gammainc

from caloforge.errors import CaloforgeError
from caloforge.fastsim import FastSim, SpotParams, VoxelLookup, get_detector, gflash_params, simulate
from caloforge.fastsim.profiles import longitudinal_moments, radial_cdf


@pytest.fixture(scope="module")
def ds2():
    return get_detector("ds2")


def _frozen(params, **radial):
    """Parameters without shower-to-shower profile fluctuations (sigma -> 1e-6)."""
    long = replace(params.longitudinal, t_width_a=1e6, t_width_b=0.0, alpha_width_a=1e6, alpha_width_b=0.0)
    return replace(params, longitudinal=long, radial=replace(params.radial, **radial) if radial else params.radial)


def test_same_seed_same_showers_any_thread_count(ds2):
    params = gflash_params(ds2)
    e = np.geomspace(1e3, 1e5, 300)
    a = FastSim(ds2, params, n_workers=1).sample(e, seed=5)
    b = FastSim(ds2, params, n_workers=3).sample(e, seed=5)
    c = FastSim(ds2, params, n_workers=2).sample(e, seed=6)
    assert a.dtype == np.float32 and a.shape == (300, 6480)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a, simulate(e, ds2, params, seed=5))


@pytest.mark.parametrize("name", ["ds2", "ds3"])
def test_fast_and_general_voxel_paths_agree(name):
    geo = get_detector(name).geometry
    fast, general = VoxelLookup(geo), VoxelLookup(geo, fast_path=False)
    assert fast.uniform and not general.uniform
    rng = np.random.default_rng(0)
    r = rng.uniform(0, 50, 100000).astype(np.float32)
    u = rng.random(100000, dtype=np.float32)
    layer = np.zeros(100000, dtype=np.int64)
    expected = general.local_index(r, u, layer)
    np.testing.assert_array_equal(fast.local_index(r, u), expected)
    a_bin = np.minimum((u.astype(np.float64) * geo.layers[0].n_alpha).astype(np.int32), geo.layers[0].n_alpha - 1)
    np.testing.assert_array_equal(fast.uniform_local_index(r, a_bin), expected)
    assert np.mean(expected < 0) == pytest.approx(np.mean(r >= 41.85), abs=1e-9)


def test_fast_and_general_paths_give_the_same_ds2_showers(ds2):
    # with 16 (a power of two) alpha bins the integer and the float azimuth draws use the same bits
    params = gflash_params(ds2)
    e = np.full(50, 2e4)
    np.testing.assert_array_equal(FastSim(ds2, params).sample(e, 1), FastSim(ds2, params, fast_path=False).sample(e, 1))


def test_general_lookup_matches_per_layer_binning():
    det = get_detector("ds1-photons-like")
    geo = det.geometry
    lookup = VoxelLookup(geo)
    assert not lookup.uniform
    rng = np.random.default_rng(0)
    layer = rng.integers(-1, geo.n_layers + 1, 20000)
    r = rng.uniform(0, 2500, 20000).astype(np.float32)
    u = rng.random(20000, dtype=np.float32)
    got = lookup.voxel_index(layer, r, u)
    for i in range(20000):
        lay = int(layer[i])
        if lay < 0 or lay >= geo.n_layers or geo.layers[lay].n_r == 0 or r[i] >= geo.layers[lay].r_edges[-1]:
            assert got[i] == -1
            continue
        edges = geo.layers[lay].r_edges
        r_bin = int(np.searchsorted(edges, r[i], side="right") - 1)
        a_bin = int(np.floor(u[i] * geo.layers[lay].n_alpha))
        assert got[i] == geo.flat_index(lay, a_bin, r_bin)


def test_mean_longitudinal_profile_is_the_integrated_gamma(ds2):
    # no profile fluctuations and tiny radii: layer fractions = Gamma(alpha, beta) integrated per layer
    params = _frozen(gflash_params(ds2), rc_a=1e-4, rc_b=0.0, rc_c=0.0, rt_k1=1e-4)
    e = np.full(200, 1e4)
    showers, truth = FastSim(ds2, params).sample_chunk(e, np.random.default_rng(3), return_truth=True)
    fractions = (showers @ ds2.geometry.layer_matrix / truth.e_visible[:, None]).mean(axis=0)
    m_t, m_a, *_ = longitudinal_moments(params.longitudinal, np.log(1e4 / ds2.critical_mev))
    alpha, t_max = np.exp(m_a), np.exp(m_t)
    expected = np.diff(gammainc(alpha, (alpha - 1) / t_max * ds2.slice_edges_x0))
    np.testing.assert_allclose(truth.alpha, alpha, rtol=1e-4)
    big = expected > 0.01 * expected.max()
    np.testing.assert_allclose(fractions[big], expected[big], rtol=0.02, atol=3e-4)
    assert np.abs(fractions - expected).max() < 2e-3


def test_mean_radial_profile_is_core_plus_tail(ds2):
    # radii and core fraction independent of depth: R_C = 0.2, R_T = 2 * 0.5, p = 0.6 (Moliere radii)
    params = _frozen(gflash_params(ds2), rc_a=0.2, rc_b=0.0, rc_c=0.0, rt_k1=0.5, rt_k3=0.0, rt_k4_a=0.0,
                     rt_k4_b=0.0, p_1=0.6 * np.e, p_2=0.0, p_3_a=1e6, p_3_b=0.0)
    e = np.full(200, 1e4)
    showers, truth = FastSim(ds2, params).sample_chunk(e, np.random.default_rng(4), return_truth=True)
    geo = ds2.geometry
    per_r = (geo.to_grid(showers).sum(axis=(1, 2)) / truth.e_visible[:, None]).mean(axis=0)  # (9,)
    m_t, m_a, *_ = longitudinal_moments(params.longitudinal, np.log(1e4 / ds2.critical_mev))
    alpha, t_max = np.exp(m_a), np.exp(m_t)
    in_depth = gammainc(alpha, (alpha - 1) / t_max * ds2.depth_x0)
    cdf = radial_cdf(geo.layers[0].r_edges / ds2.moliere_mm, 0.2, 1.0, 0.6)
    np.testing.assert_allclose(per_r, in_depth * np.diff(cdf), rtol=0.01, atol=5e-4)


def test_spot_energies_add_up_to_the_visible_energy(ds2):
    params = replace(gflash_params(ds2), spots=SpotParams(n_per_gev=50, exponent=1.0, energy_shape=1e6))
    sim = FastSim(ds2, params)
    showers, truth = sim.sample_chunk(np.full(100, 5e3), np.random.default_rng(1), return_truth=True)
    spot = truth.e_visible / truth.n_spots
    hits = showers.sum(axis=1) / spot
    np.testing.assert_allclose(hits, np.round(hits), atol=1e-2)  # equal spots: whole multiples
    assert np.all(showers.sum(axis=1) <= truth.e_visible * (1 + 1e-5))
    # Gamma-weighted spots are normalised to E_vis including the spots that leak out
    weighted = FastSim(ds2, replace(params, spots=replace(params.spots, energy_shape=0.5)))
    s2, t2 = weighted.sample_chunk(np.full(100, 5e3), np.random.default_rng(1), return_truth=True)
    ratio = s2.sum(axis=1) / t2.e_visible
    assert 0.9 < ratio.mean() < 1.0 and ratio.max() <= 1.0 + 1e-5


def test_profile_parameters_are_correlated_as_specified(ds2):
    params = replace(gflash_params(ds2), spots=SpotParams(n_per_gev=5, exponent=1.0))
    _, truth = FastSim(ds2, params).sample_chunk(np.full(4000, 2e4), np.random.default_rng(2), return_truth=True)
    m_t, m_a, s_t, s_a, rho = longitudinal_moments(params.longitudinal, np.log(2e4 / ds2.critical_mev))
    ln_t, ln_a = np.log(truth.t_max), np.log(truth.alpha)
    assert np.corrcoef(ln_t, ln_a)[0, 1] == pytest.approx(rho, abs=0.03)
    assert ln_t.mean() == pytest.approx(m_t, abs=0.01) and ln_t.std() == pytest.approx(s_t, rel=0.05)
    assert ln_a.std() == pytest.approx(s_a, rel=0.05)


def test_irregular_readout_receives_energy_only_in_its_voxel_layers():
    det = get_detector("ds1-photons-like")
    showers = FastSim(det, gflash_params(det)).sample(np.full(100, 1e4), seed=0)
    geo = det.geometry
    assert showers.shape == (100, 368)
    layer_e = showers @ geo.layer_matrix
    assert np.all(layer_e[:, [0, 1, 2, 3]].mean(axis=0) > 0)
    assert layer_e[:, 2].mean() > layer_e[:, 1].mean() > layer_e[:, 0].mean()  # the EM shower peaks in EMB2
    assert 0.5 < (showers.sum(axis=1) / 1e4).mean() < 1.0


@pytest.mark.parametrize("energies", [[1e3, -5.0], [np.nan], [0.0]])
def test_invalid_energies_are_refused(ds2, energies):
    with pytest.raises(CaloforgeError, match="incident energies"):
        FastSim(ds2, gflash_params(ds2)).sample(np.array(energies), seed=0)
