"""Cold-diffusion refiner: Brownian bridge FastSim -> Geant4 (caloforge.hybrid.bridge, `train-refiner`, `refine`).

A tiny ds2 base model (random weights, preprocessing fitted on FastSim showers) and Geant4-like
training showers made by FastSim with other parameters keep this fast; what is tested (bridge
endpoints, the posterior step, training lowers the loss, file round trip, conditioning kept,
valid files, errors) does not need trained weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from caloforge.cli import main as cli_main
from caloforge.diffusion import ModelConfig, ShowerDiffusionModel
from caloforge.fastsim import FastSim, get_detector, resolve_params
from caloforge.geometry import get_geometry
from caloforge.hybrid import BridgeConfig, BridgeTrainConfig, ShowerBridge, load_bridge_file, refine_showers, train_bridge
from caloforge.io import read_showers, validate_file, write_showers
from caloforge.nn import LayerMLPConfig, UNetConfig
from caloforge.train.checkpoint import save_model_file

TINY_UNET = UNetConfig(stem_channels=0, channels=[8, 8], blocks=1, emb_dim=16)


@pytest.fixture(scope="module")
def showers() -> tuple[np.ndarray, np.ndarray]:
    """'Geant4' stand-in: FastSim showers with their front half of the layers scaled up by 20 %."""
    det = get_detector("ds2")
    energies = (1e3 * 10 ** np.random.default_rng(3).uniform(0, 2, 60)).astype(np.float32)
    s = FastSim(det, resolve_params(None, det, "e-")).sample(energies, seed=9)
    layer = get_geometry("ds2").voxel_layer
    return energies, (s * np.where(layer < 22, 1.2, 1.0)).astype(np.float32)


@pytest.fixture(scope="module")
def base_file(showers, tmp_path_factory):
    torch.manual_seed(0)
    cfg = ModelConfig(unet=TINY_UNET, layer_model=LayerMLPConfig(hidden=16, blocks=1, emb_dim=16))
    model = ShowerDiffusionModel(get_geometry("ds2"), cfg)
    e, s = showers
    model.fit_preprocessing(torch.from_numpy(e).reshape(-1, 1), torch.from_numpy(s))
    return save_model_file(tmp_path_factory.mktemp("base") / "base.pt", model.eval(), {"note": "random weights"})


@pytest.fixture(scope="module")
def g4_file(showers, tmp_path_factory):
    e, s = showers
    path = tmp_path_factory.mktemp("g4") / "g4.h5"
    write_showers(path, e.reshape(-1, 1), s)
    return path


@pytest.fixture(scope="module")
def trained(base_file, g4_file, tmp_path_factory):
    cfg = BridgeTrainConfig(bridge=BridgeConfig(sigma_bridge=0.5, unet=TINY_UNET), steps=40, batch_size=8, lr=3e-3,
                            warmup_steps=5, val_every=20, val_fraction=0.2, val_showers=12)
    out = tmp_path_factory.mktemp("refiner")
    return train_bridge(cfg, g4_file, out, base=base_file, seed=1, progress=False)


def _bridge(sigma: float) -> ShowerBridge:
    torch.manual_seed(0)
    base = ShowerDiffusionModel(get_geometry("ds2"), ModelConfig(unet=TINY_UNET, layer_model=LayerMLPConfig(
        hidden=16, blocks=1, emb_dim=16)))
    return ShowerBridge(base, BridgeConfig(sigma_bridge=sigma, unet=TINY_UNET)).eval()


def test_degradation_interpolates_between_the_endpoints():
    bridge = _bridge(0.7)
    g, f, eps = torch.randn(3, 10), torch.randn(3, 10), torch.randn(3, 10)
    torch.testing.assert_close(bridge.degrade(g, f, torch.zeros(3), eps), g)
    torch.testing.assert_close(bridge.degrade(g, f, torch.ones(3), eps), f)
    mid = bridge.degrade(g, f, torch.full((3,), 0.5), eps)
    torch.testing.assert_close(mid, 0.5 * (g + f) + 0.7 * 0.5 * eps)


def test_sampler_ends_on_the_network_estimate_and_is_seeded():
    bridge = _bridge(1.0)
    n, v = 4, bridge.geometry.n_voxels
    z_fast, cond = torch.randn(n, v), torch.zeros(n, bridge.base.voxel_cond_dim)
    one = bridge.sample(z_fast, cond, 1, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(one, bridge.predict(z_fast, torch.ones(n), cond))  # t = 1 -> 0: z0_hat, no noise
    a = bridge.sample(z_fast, cond, 3, generator=torch.Generator().manual_seed(5))
    b = bridge.sample(z_fast, cond, 3, generator=torch.Generator().manual_seed(5))
    c = bridge.sample(z_fast, cond, 3, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)  # the bridge noise is really injected between steps


def test_training_lowers_the_validation_loss_and_writes_a_loadable_model(trained):
    first, last = trained.history[0]["val_loss"], trained.history[-1]["val_loss"]
    assert trained.steps == 40 and last < first
    bridge, meta = load_bridge_file(trained.model_path)
    assert meta["format"] == "caloforge-bridge-model" and meta["training"]["step"] in (20, 40)
    assert bridge.config.sigma_bridge == 0.5 and (trained.model_path.parent / "history.csv").is_file()
    config = yaml.safe_load((trained.model_path.parent / "config.yaml").read_text())
    assert config["initialised_from_base"] is True  # same architecture as the base: started from its weights


def test_refine_with_the_refiner_keeps_energies_and_writes_valid_files(trained, showers, tmp_path, capsys):
    e, s = showers
    bridge, _ = load_bridge_file(trained.model_path)
    out = refine_showers(bridge, e[:10], s[:10], sigma0=1.0, steps=3, seed=2)
    assert out.shape == (10, 6480) and np.all(np.isfinite(out)) and np.all(out >= 0)
    path = tmp_path / "refined.h5"
    assert cli_main(["refine", "--model", str(trained.model_path), "--energy", "1:100", "--n", "7", "--steps", "2",
                     "--out", str(path), "--no-progress"]) == 0
    info = validate_file(path, 6480, geometry_name="ds2")
    assert info.n_showers == 7
    energies, _ = read_showers(path)
    config = yaml.safe_load(path.with_suffix(".yaml").read_text())
    assert config["method"] == "bridge" and config["network_evaluations"] == 2
    assert np.all(energies > 1e3 * 0.999) and np.all(energies < 1e5 * 1.001)


def test_train_refiner_cli_errors_are_one_line(base_file, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 0\n")
    assert cli_main(["train-refiner", "--data", str(tmp_path / "missing.h5"), "--base", str(base_file),
                     "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "steps must be > 0" in err and len(err.strip().splitlines()) == 1
    bad.write_text("stepz: 3\n")
    assert cli_main(["train-refiner", "--data", "x.h5", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "stepz" in capsys.readouterr().err
