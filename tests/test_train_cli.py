"""``caloforge train`` / ``caloforge generate``: end to end on a tiny model; errors are one line."""

import h5py
import numpy as np
import pytest
import yaml
from diffusion_helpers import small_geometry, write_toy_file

from caloforge.cli import main
from caloforge.geometry import write_binning_xml
from caloforge.io import read_showers


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    geometry = small_geometry()
    xml = write_binning_xml(geometry, tmp / "small.xml")
    data = write_toy_file(tmp / "train.h5", 40, geometry, seed=2)
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "geometry": str(xml), "epochs": 2, "batch_size": 16, "layer_batch_size": 32, "warmup_steps": 2,
        "model": {"unet": {"channels": [8, 8], "emb_dim": 16}, "layer_model": {"hidden": 16, "blocks": 1, "emb_dim": 16}},
    }))
    assert main(["train", "--config", str(config), "--data", str(data), "--out", str(tmp / "run"), "--no-progress"]) == 0
    return tmp, data, tmp / "run" / "model.pt"


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    for needle in needles:
        assert needle in err, err
    return err


def test_generate_writes_reproducible_file(trained, capsys):
    tmp, data, model = trained
    base = ["generate", "--model", str(model), "--n", "7", "--energy", "1:100", "--sampler", "ddim", "--steps", "3",
            "--layer-steps", "3", "--batch-size", "4", "--seed", "5", "--no-progress"]
    assert main(base + ["--out", str(tmp / "a.h5")]) == 0
    assert main(base + ["--out", str(tmp / "b.h5")]) == 0
    ea, sa = read_showers(tmp / "a.h5")
    eb, sb = read_showers(tmp / "b.h5")
    assert sa.shape == (7, 192) and np.array_equal(sa, sb) and np.array_equal(ea, eb)
    assert 1e3 <= ea.min() and ea.max() <= 1e5
    with h5py.File(tmp / "a.h5") as f:
        assert f.attrs["generator"] == "caloforge-diffusion" and f.attrs["sampler"] == "ddim"
        assert f.attrs["steps"] == 3 and f.attrs["seed"] == 5 and f.attrs["model"] == str(model)
    assert yaml.safe_load((tmp / "a.yaml").read_text())["sampler"] == "ddim"
    _one_line_error(capsys, base + ["--out", str(tmp / "a.h5")], "already exists", "--overwrite")
    # energies taken from a file
    assert main(["generate", "--model", str(model), "--energies-from", str(data), "--n", "3", "--steps", "2",
                 "--layer-steps", "2", "--out", str(tmp / "c.h5"), "--no-progress"]) == 0
    assert np.array_equal(read_showers(tmp / "c.h5")[0], read_showers(data)[0][:3])


def test_generate_errors(trained, capsys, monkeypatch, tmp_path):
    tmp, data, model = trained
    out = ["--out", str(tmp_path / "x.h5"), "--no-progress"]
    _one_line_error(capsys, ["generate", "--model", str(tmp / "missing.pt"), "--n", "2", "--energy", "10"] + out,
                    "missing.pt", "checkpoint not found")
    _one_line_error(capsys, ["generate", "--model", str(data), "--n", "2", "--energy", "10"] + out,
                    "not a caloforge checkpoint")
    _one_line_error(capsys, ["generate", "--model", str(model), "--energy", "10"] + out, "--energy needs --n")
    _one_line_error(capsys, ["generate", "--model", str(model), "--n", "2", "--energy", "abc"] + out, "energy")
    _one_line_error(capsys, ["generate", "--model", str(model), "--n", "99", "--energies-from", str(data)] + out,
                    "holds 40 incident energies")
    import caloforge.generation.models as models

    monkeypatch.setattr(models, "default_model_path", lambda: tmp_path / "absent.pt")
    _one_line_error(capsys, ["generate", "--model", "default", "--n", "2", "--energy", "10"] + out,
                    "no bundled default model")
    assert not (tmp_path / "x.h5").exists()


def test_train_errors(trained, capsys, tmp_path):
    tmp, data, _ = trained
    bad = tmp_path / "bad.yaml"
    bad.write_text("geometry: ds2\nepochs: 1\nlearning_rate: 0.1\n")
    _one_line_error(capsys, ["train", "--config", str(bad), "--data", str(data), "--out", str(tmp_path / "r")],
                    "unknown key(s) ['learning_rate']")
    good = tmp_path / "good.yaml"
    good.write_text("geometry: ds2\nepochs: 1\n")
    _one_line_error(capsys, ["train", "--config", str(good), "--data", str(tmp_path / "none.h5"), "--out",
                             str(tmp_path / "r")], "none.h5", "not found")
    _one_line_error(capsys, ["train", "--config", str(good), "--data", str(data), "--out", str(tmp_path / "r")],
                    "expected 6480")
