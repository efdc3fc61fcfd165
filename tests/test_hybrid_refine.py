"""Hybrid simulation: SDEdit refinement of FastSim showers (caloforge.hybrid, `caloforge refine`).

A tiny randomly initialised ds2 model (preprocessing fitted on FastSim showers) keeps these fast;
the properties tested (conditioning kept, valid files, t0 -> 0 identity, seeds) do not depend on
the weights being trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from caloforge.cli import main as cli_main
from caloforge.diffusion import ModelConfig, ShowerDiffusionModel
from caloforge.errors import CaloforgeError
from caloforge.fastsim import FastSim, get_detector, resolve_params
from caloforge.geometry import cell_threshold_mev, get_geometry
from caloforge.hybrid import refine_file, refine_showers, resolve_sigma0, sdedit_sigmas, start_sigma
from caloforge.io import read_showers, validate_file, write_showers
from caloforge.nn import LayerMLPConfig, UNetConfig
from caloforge.train.checkpoint import save_model_file


@pytest.fixture(scope="module")
def fastsim_data() -> tuple[np.ndarray, np.ndarray]:
    det = get_detector("ds2")
    sim = FastSim(det, resolve_params(None, det, "e-"))
    energies = (1e3 * 10 ** np.random.default_rng(3).uniform(0, 2, 40)).astype(np.float32)
    return energies, sim.sample(energies, seed=5)


@pytest.fixture(scope="module")
def tiny_model(fastsim_data) -> ShowerDiffusionModel:
    torch.manual_seed(0)
    cfg = ModelConfig(unet=UNetConfig(stem_channels=0, channels=[8, 8], blocks=1, emb_dim=16),
                      layer_model=LayerMLPConfig(hidden=16, blocks=1, emb_dim=16))
    model = ShowerDiffusionModel(get_geometry("ds2"), cfg)
    e, s = fastsim_data
    model.fit_preprocessing(torch.from_numpy(e).reshape(-1, 1), torch.from_numpy(s))
    return model.eval()


@pytest.fixture(scope="module")
def model_file(tiny_model, tmp_path_factory) -> Path:
    return save_model_file(tmp_path_factory.mktemp("model") / "tiny.pt", tiny_model, {"note": "random weights"})


def test_start_sigma_and_schedule() -> None:
    assert start_sigma(0.0) == 0.0
    assert start_sigma(1.0) == pytest.approx(80.0)
    assert start_sigma(1e-9) == pytest.approx(0.002, rel=1e-4)
    assert 0.002 < start_sigma(0.3) < start_sigma(0.5) < 80.0
    sig = sdedit_sigmas("dpmpp2m", 4, 2.5)
    assert sig.shape == (5,) and float(sig[0]) == pytest.approx(2.5) and float(sig[-1]) == 0.0
    assert torch.all(sig[:-1] > sig[1:])
    assert resolve_sigma0(sigma0=1.5) == 1.5
    with pytest.raises(CaloforgeError, match="t0 must be in"):
        resolve_sigma0(t0=1.5)
    with pytest.raises(CaloforgeError, match="exactly one"):
        resolve_sigma0(t0=0.5, sigma0=1.0)


@pytest.mark.parametrize("layers", ["refine", "fastsim"])
def test_t0_zero_is_identity_up_to_round_trip(tiny_model, fastsim_data, layers) -> None:
    e, s = fastsim_data
    out = refine_showers(tiny_model, e, s, sigma0=resolve_sigma0(t0=0.0), steps=4, layers=layers)
    expected = np.where(s < cell_threshold_mev(tiny_model.geometry), 0.0, s)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-3)  # MeV; logit/exp round trip in float32
    np.testing.assert_allclose(out.sum(1), expected.sum(1), rtol=1e-5)


def test_refinement_changes_showers_keeps_layer_energies_with_fastsim_mode(tiny_model, fastsim_data) -> None:
    e, s = fastsim_data
    out = refine_showers(tiny_model, e, s, sigma0=start_sigma(0.5), steps=2, layers="fastsim", seed=1)
    assert out.shape == s.shape and np.all(np.isfinite(out)) and np.all(out >= 0)
    assert np.abs(out - s).max() > 1.0  # noise at t0 = 0.5 really changes the voxels
    geo = tiny_model.geometry
    layer_in = np.stack([s[:, geo.voxel_layer == k].sum(1) for k in range(geo.n_layers)], 1)
    layer_out = np.stack([out[:, geo.voxel_layer == k].sum(1) for k in range(geo.n_layers)], 1)
    # layer energies are FastSim's, up to the voxels the cell threshold removes afterwards
    thr = cell_threshold_mev(geo) * np.bincount(geo.voxel_layer)[None, :]
    assert np.all(layer_out <= layer_in * (1 + 1e-4) + 1e-3)
    assert np.all(layer_out >= layer_in - thr - 1e-3)


def test_seeds_reproducible_and_chunking_invariant(tiny_model, fastsim_data) -> None:
    e, s = fastsim_data
    kw = dict(sigma0=start_sigma(0.4), steps=2, batch_size=10)
    a = refine_showers(tiny_model, e, s, seed=7, **kw)
    b = np.concatenate([refine_showers(tiny_model, e[:20], s[:20], seed=7, **kw),
                        refine_showers(tiny_model, e[20:], s[20:], seed=7, first_index=20, **kw)])
    c = refine_showers(tiny_model, e, s, seed=8, **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_refine_file_from_fastsim_file(model_file, fastsim_data, tmp_path) -> None:
    e, s = fastsim_data
    src = write_showers(tmp_path / "fast.h5", e, s, {"geometry": "ds2"})
    out = tmp_path / "refined.h5"
    res = refine_file(out, model_file, fastsim_from=src, t0=0.5, steps=2, batch_size=16, seed=3, progress=False)
    info = validate_file(out, 6480, geometry_name="ds2")
    assert info.n_showers == 40 and res.n_showers == 40
    e_out, s_out = read_showers(out)
    np.testing.assert_array_equal(e_out[:, 0], e)  # incident-energy conditioning preserved exactly
    assert not np.allclose(s_out, s)
    cfg = yaml.safe_load(res.config_path.read_text())
    assert cfg["t0"] == 0.5 and cfg["steps"] == 2 and cfg["sigma0"] == pytest.approx(start_sigma(0.5))
    with pytest.raises(CaloforgeError, match="already exists"):
        refine_file(out, model_file, fastsim_from=src, t0=0.5, progress=False)
    again = refine_file(tmp_path / "again.h5", model_file, fastsim_from=src, t0=0.5, steps=2, batch_size=16, seed=3,
                        progress=False)
    np.testing.assert_array_equal(read_showers(again.path)[1], s_out)


def test_cli_refine_runs_fastsim(model_file, tmp_path, capsys) -> None:
    out = tmp_path / "cli.h5"
    args = ["refine", "--energy", "1:100", "--n", "12", "--model", str(model_file), "--t0", "0.3", "--steps", "1",
            "--seed", "4", "--out", str(out), "--no-progress"]
    assert cli_main(args) == 0
    e1, s1 = read_showers(out)
    assert e1.shape == (12, 1) and s1.shape == (12, 6480) and np.all(e1 >= 1e3 * 0.999) and np.all(e1 <= 1e5 * 1.001)
    assert cli_main(args[:-2] + [str(tmp_path / "cli2.h5"), "--no-progress"]) == 0
    e2, s2 = read_showers(tmp_path / "cli2.h5")
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_array_equal(s1, s2)
    assert out.with_suffix(".yaml").is_file()
    assert cli_main(["refine", "--energy", "1:100", "--model", str(model_file), "--out", str(tmp_path / "x.h5")]) == 2
    assert "--n" in capsys.readouterr().err
