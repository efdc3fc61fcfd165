"""Training: a tiny model overfits a tiny set; checkpoints round-trip; resume continues; bad
checkpoints are refused with one clear line."""

import dataclasses

import pytest
import torch
from diffusion_helpers import small_geometry, write_toy_file

from caloforge.diffusion import ModelConfig, ShowerDiffusionModel
from caloforge.errors import CaloforgeError, InputFileError
from caloforge.geometry import get_geometry, write_binning_xml
from caloforge.nn import LayerMLPConfig, UNetConfig
from caloforge.train import TrainConfig, load_model_file, save_model_file, train, validation_loss

SMALL_MODEL = ModelConfig(unet=UNetConfig(channels=[16, 24], emb_dim=32),
                          layer_model=LayerMLPConfig(hidden=64, blocks=2, emb_dim=32))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    geometry = small_geometry()
    xml = write_binning_xml(geometry, tmp / "small.xml")
    data = write_toy_file(tmp / "tiny.h5", 16, geometry, seed=1, smooth=True)
    return tmp, str(xml), data


def _config(xml: str, **kw) -> TrainConfig:
    base = dict(geometry=xml, model=SMALL_MODEL, batch_size=16, layer_batch_size=16, epochs=150, lr=3e-3,
                lr_min=3e-4, warmup_steps=10, ema_decay=0.9, patience=0, val_max_showers=16)
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_model_overfits_tiny_set(setup):
    tmp, xml, data = setup
    cfg = _config(xml)
    result = train(cfg, data, tmp / "overfit", val=data, seed=0, progress=False)
    assert result.epochs == 150 and result.steps == 150 and result.stopped == "epochs"
    # loss of the untrained model on the same fixed noise draws
    torch.manual_seed(0)
    from caloforge.geometry import get_geometry
    from caloforge.io import read_showers

    e, s = (torch.from_numpy(a) for a in read_showers(data))
    fresh = ShowerDiffusionModel(get_geometry(xml), SMALL_MODEL).fit_preprocessing(e, s)
    init_v, init_l = validation_loss(fresh, fresh.encode(e, s), 0, cfg)
    final = result.history[-1]
    assert 0.5 < init_v < 1.5 and 0.5 < init_l < 1.5  # EDM: unit-variance targets at initialisation
    # stated factors: 150 steps on 16 showers cut the voxel loss at least 5-fold (measured ~9x)
    # and the layer-energy loss at least 1.6-fold (measured ~2.1x)
    assert final["val_voxel_loss"] < init_v / 5
    assert final["val_layer_loss"] < init_l / 1.6
    assert (tmp / "overfit" / "config.yaml").is_file() and (tmp / "overfit" / "history.csv").is_file()


def test_checkpoint_round_trip(setup):
    tmp, xml, data = setup
    model, meta = load_model_file(tmp / "overfit" / "model.pt")
    assert meta["format"] == "caloforge-diffusion-model" and meta["training"]["epoch"] >= 1
    assert meta["geometry"]["name"] == "small" and not model.training
    save_model_file(tmp / "copy.pt", model, meta["training"])
    again, _ = load_model_file(tmp / "copy.pt")
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    energies = torch.full((3, 1), 5000.0)
    one = model.generate(energies, steps=3, layer_steps=3, generator=torch.Generator().manual_seed(4))
    two = again.generate(energies, steps=3, layer_steps=3, generator=torch.Generator().manual_seed(4))
    assert one.shape == (3, 192) and torch.equal(one, two)
    # the layer-energy model sets the layer energies (shapes only redistribute within a layer)
    assert torch.all(one >= 0) and torch.all(one.sum(1) > 0)


def test_resume_continues_the_run(setup):
    tmp, xml, data = setup
    out = tmp / "resume"
    first = train(_config(xml, epochs=1), data, out, seed=3, progress=False)
    assert first.epochs == 1
    with pytest.raises(CaloforgeError, match="already holds a training run"):
        train(_config(xml, epochs=1), data, out, seed=3, progress=False)
    with pytest.raises(CaloforgeError, match=r"cannot resume: config keys \['lr'\]"):
        train(_config(xml, epochs=2, lr=1e-3), data, out, seed=3, resume=True, progress=False)
    second = train(_config(xml, epochs=2), data, out, seed=3, resume=True, progress=False)
    assert second.epochs == 2 and second.steps == 2 and len(second.history) == 2
    assert second.history[0] == first.history[0]
    with pytest.raises(CaloforgeError, match="nothing to resume"):
        train(_config(xml), data, tmp / "empty", seed=3, resume=True, progress=False)


def test_incompatible_checkpoints_are_refused(setup):
    tmp, xml, data = setup
    good = torch.load(tmp / "overfit" / "model.pt", weights_only=True)
    (tmp / "text.pt").write_text("not a checkpoint")
    with pytest.raises(InputFileError, match="not a caloforge checkpoint"):
        load_model_file(tmp / "text.pt")
    torch.save({"weights": torch.zeros(3)}, tmp / "plain.pt")
    with pytest.raises(InputFileError, match="no 'format' entry"):
        load_model_file(tmp / "plain.pt")
    torch.save({**good, "format_version": 99}, tmp / "future.pt")
    with pytest.raises(InputFileError, match="format version 99 is not supported"):
        load_model_file(tmp / "future.pt")
    wider = {**good["config"], "unet": {**good["config"]["unet"], "channels": [16, 32]}}
    torch.save({**good, "config": wider}, tmp / "mismatch.pt")
    with pytest.raises(InputFileError, match="weights do not match the architecture"):
        load_model_file(tmp / "mismatch.pt")
    torch.save({**good, "config": {**good["config"], "colour": "red"}}, tmp / "unknown.pt")
    with pytest.raises(InputFileError, match="unknown key"):
        load_model_file(tmp / "unknown.pt")
    with pytest.raises(InputFileError, match="training state: use the model.pt"):
        load_model_file(tmp / "overfit" / "last.pt")
    for name in ("text", "plain", "future", "mismatch", "unknown"):
        with pytest.raises(InputFileError) as info:
            load_model_file(tmp / f"{name}.pt")
        assert "\n" not in str(info.value) and str(tmp / f"{name}.pt") in str(info.value)


def test_config_is_checked():
    with pytest.raises(CaloforgeError, match="batch_size"):
        TrainConfig(batch_size=0)
    assert dataclasses.asdict(TrainConfig())["model"]["norm"] == "layer"


def test_layer_model_finetune_keeps_voxel_model(setup):
    from caloforge.train import finetune_layer_model

    tmp, xml, data = setup
    result = finetune_layer_model(tmp / "overfit" / "model.pt", data, tmp / "ft" / "model.pt",
                                  config=_config(xml, lr=1e-3), steps=20, val=data, seed=0, progress=False)
    before, _ = load_model_file(tmp / "overfit" / "model.pt")
    after, meta = load_model_file(result.model_path)
    info = meta["training"]["layer_finetune"]
    assert info["steps"] == 20 and info["kept"] in ("finetuned", "original")
    assert info["val_layer_loss_before"] == pytest.approx(result.val_loss_before)
    for key, value in before.state_dict().items():
        if not key.startswith("layer_denoiser."):
            assert torch.equal(value, after.state_dict()[key]), key


def test_best_parts_keep_each_parts_best_epoch():
    """model.pt takes each network from its own best validation epoch (train/best_parts.py)."""
    from caloforge.train.best_parts import BestParts

    torch.manual_seed(0)
    cfg = ModelConfig(unet=UNetConfig(stem_channels=0, channels=[4, 4], blocks=1, emb_dim=8),
                      layer_model=LayerMLPConfig(hidden=8, blocks=1, emb_dim=8))
    model = ShowerDiffusionModel(get_geometry("ds2"), cfg)
    best = BestParts()
    snapshots = []
    for epoch, (voxel, layer) in enumerate([(1.0, 1.0), (0.8, 1.2), (0.9, 0.9)], start=1):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        assert best.update(model, {"voxel": voxel, "layer": layer}, epoch)
    assert not best.update(model, {"voxel": 0.85, "layer": 0.95}, 4)
    assert best.epoch == {"voxel": 2, "layer": 3} and best.total_loss == pytest.approx(0.8 + 0.9)
    composed = best.compose(model).state_dict()
    for key, value in composed.items():
        source = 1 if key.startswith("voxel_denoiser.") else 2 if key.startswith("layer_denoiser.") else None
        expected = model.state_dict()[key] if source is None else snapshots[source][key]
        torch.testing.assert_close(value, expected)
    restored = BestParts()
    restored.load_state_dict(best.state_dict())
    assert restored.epoch == best.epoch and restored.loss == best.loss


def test_compose_model_example_joins_the_voxel_and_layer_networks(tmp_path):
    """examples/compose_model.py (how bundled model v2 was assembled) on two tiny model files."""
    import subprocess
    import sys
    from pathlib import Path

    cfg = ModelConfig(unet=UNetConfig(stem_channels=0, channels=[4, 4], blocks=1, emb_dim=8),
                      layer_model=LayerMLPConfig(hidden=8, blocks=1, emb_dim=8))
    torch.manual_seed(0)
    a = ShowerDiffusionModel(get_geometry("ds2"), cfg)
    b = ShowerDiffusionModel(get_geometry("ds2"), cfg)
    b.load_state_dict({k: (v if not k.startswith(("voxel_denoiser.", "layer_denoiser.")) else v + 1.0)
                       for k, v in a.state_dict().items()})
    save_model_file(tmp_path / "a.pt", a, {"epoch": 1})
    save_model_file(tmp_path / "b.pt", b, {"epoch": 2})
    script = Path(__file__).resolve().parents[1] / "examples" / "compose_model.py"
    subprocess.run([sys.executable, str(script), "--voxel-from", str(tmp_path / "a.pt"), "--layer-from",
                    str(tmp_path / "b.pt"), "--out", str(tmp_path / "c.pt")], check=True, capture_output=True)
    c, meta = load_model_file(tmp_path / "c.pt")
    for key, value in c.state_dict().items():
        source = b if key.startswith("layer_denoiser.") else a
        torch.testing.assert_close(value, source.state_dict()[key])
    assert meta["training"]["voxel_part"]["epoch"] == 1 and meta["training"]["layer_part"]["epoch"] == 2
