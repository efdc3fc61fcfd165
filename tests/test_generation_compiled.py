"""`generate --compile`: the voxel network compiled by torch.compile gives the eager showers (to
float rounding), the model is unchanged afterwards, and a missing C++ compiler is a one-line error."""

import h5py
import numpy as np
import pytest
import torch
from deploy_helpers import SAMPLER, tiny_checkpoint

from caloforge.cli import main
from caloforge.errors import CaloforgeError
from caloforge.generation import generate_showers, load_model
from caloforge.generation import compiled as compiled_module
from caloforge.io import read_showers


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("compiled") / "tiny.pt")


def test_compiled_generation_matches_eager_and_restores_the_model(checkpoint):
    loaded = load_model(checkpoint)
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    eager_backbone = loaded.model.voxel_denoiser.backbone
    energies = np.geomspace(1e3, 1e5, 7).astype(np.float32)
    kw = dict(**SAMPLER, batch_size=4, seed=5)  # batches of 4 and 3: two compiled shapes
    eager = generate_showers(loaded, energies, **kw)
    fast = generate_showers(loaded, energies, **kw, compile=True)
    assert fast.shape == eager.shape
    np.testing.assert_allclose(fast, eager, rtol=1e-3, atol=1e-3 * float(eager.max()))
    assert loaded.model.voxel_denoiser.backbone is eager_backbone
    after = loaded.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_generate_cli_compile_flag(checkpoint, tmp_path, monkeypatch, capsys):
    base = ["generate", "--model", str(checkpoint), "--n", "5", "--energy", "1:100", "--sampler", "heun", "--steps", "2",
            "--layer-sampler", "heun", "--layer-steps", "3", "--batch-size", "5", "--seed", "1", "--no-progress"]
    assert main(base + ["--compile", "--out", str(tmp_path / "c.h5")]) == 0
    assert main(base + ["--out", str(tmp_path / "e.h5")]) == 0
    with h5py.File(tmp_path / "c.h5") as f:
        assert bool(f.attrs["compiled"])
    c, e = read_showers(tmp_path / "c.h5")[1], read_showers(tmp_path / "e.h5")[1]
    np.testing.assert_allclose(c, e, rtol=1e-3, atol=1e-3 * float(e.max()))
    # refused with --server (the served graph fixes it) and without a C++ compiler, in one line
    assert main(["generate", "--n", "5", "--energy", "1:100", "--compile", "--server", "http://127.0.0.1:1",
                 "--out", str(tmp_path / "s.h5")]) == 2
    assert "--compile does not apply with --server" in capsys.readouterr().err
    monkeypatch.setattr(compiled_module.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(CaloforgeError, match="needs a C\\+\\+ compiler"):
        compiled_module.check_compiler()
    assert main(base + ["--compile", "--out", str(tmp_path / "n.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs a C++ compiler" in err and err.count("\n") == 0
    assert not (tmp_path / "n.h5").exists()
