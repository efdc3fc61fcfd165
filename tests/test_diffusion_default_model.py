"""The bundled default model (ds2 electrons) loads and generates plausible showers."""

import numpy as np

from caloforge.generation import default_model_path, generate_layer_energies, generate_showers, load_model


def test_bundled_model_generates():
    path = default_model_path()
    assert path.is_file() and path.stat().st_size < 20e6
    loaded = load_model("default")
    assert loaded.source == "default" and loaded.geometry.name == "ds2"
    assert loaded.meta["training"] and loaded.model.has_layer_model
    energies = np.array([5e3, 5e4], dtype=np.float32)
    showers = generate_showers(loaded, energies, **loaded.sampling, seed=0)  # what `generate` uses by default
    assert showers.shape == (2, 6480) and np.all(showers >= 0)
    ratio = showers.sum(1) / energies
    assert np.all((ratio > 0.7) & (ratio < 1.2))  # Geant4: E_total/E_inc = 0.96 +- 0.05
    # the layer-energy model alone: mean response within 3 % of Geant4's 0.96
    layers = generate_layer_energies(loaded, np.full(400, 2e4, np.float32), steps=16, seed=1)
    assert abs(float((layers.sum(1) / 2e4).mean()) - 0.96) < 0.03


def test_bundled_fast_model_recommends_one_step_and_exports_its_sampling():
    from caloforge.deploy import build_sampler_graph

    fast = load_model("ds2-fast")
    assert fast.sampling == {"sampler": "consistency", "steps": 1, "layer_sampler": "dpmpp2m-s20", "layer_steps": 10}
    assert fast.meta["training"]["distillation"]["step"] > 0
    # the default is this one-step student, shape-tuned; ds2-full is the diffusion model it came from
    assert load_model("default").sampling == fast.sampling
    distillation = fast.meta["training"]["distillation"]
    assert distillation["config"]["shape_weight"] > 0 and distillation["init_student"]["distillation"]["step"] > 0
    energies = np.array([2e4, 2e4], dtype=np.float32)
    showers = generate_showers(fast, energies, **fast.sampling, seed=3)
    assert showers.shape == (2, 6480) and np.all((showers.sum(1) / energies > 0.7) & (showers.sum(1) / energies < 1.2))
    assert build_sampler_graph(fast).spec.sampler == "consistency"
    # the full model recommends DDPM (stochastic): export falls back to a deterministic sampler
    assert load_model("ds2-full").sampling["sampler"] == "ddpm"
    assert build_sampler_graph("ds2-full", steps=2, layer_steps=2).spec.sampler == "heun"
