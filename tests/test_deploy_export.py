"""Export of the real caloforge diffusion model (tiny, random weights) to ONNX / TorchScript / Triton."""

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml

from caloforge.cli import main
from caloforge.deploy import make_noise, voxel_permutation, with_voxel_order, write_triton_model
from caloforge.deploy.api import EXPORT_CONFIG_FILE, export_model
from caloforge.deploy.export import write_export_dir
from caloforge.deploy.model_graph import build_sampler_graph
from caloforge.deploy.triton_repo import TritonModelOptions
from caloforge.errors import CaloforgeError
from caloforge.generation import generate_showers
from caloforge.geometry import get_geometry
from deploy_helpers import SAMPLER, tiny_checkpoint, tiny_model


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # the 2-core machine is shared: more threads only contend
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def graph(model):
    return build_sampler_graph(model, **SAMPLER)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def _energies(n):
    return np.geomspace(1000.0, 100000.0, n).astype(np.float32).reshape(n, 1)


def test_graph_is_generate_showers_with_noise_as_input(model, graph):
    e = _energies(7)
    for start, batch in ((0, 7), (3, 4)):  # a chunk of a longer run (first_index = start)
        local = generate_showers(model, e[:batch], seed=11, batch_size=batch, first_index=start, **SAMPLER)
        with torch.no_grad():
            noise = make_noise(graph.spec.noise_parts, batch, 11, start)
            out = graph(torch.from_numpy(e[:batch]), torch.from_numpy(noise))
        np.testing.assert_array_equal(out.numpy(), local)
    assert graph.spec.noise_parts == (46, 6480)
    assert local.shape == (4, 6480) and np.all(local >= 0) and np.any(local > 0)


def test_onnx_round_trip(tmp_path, graph):
    out, meta = write_export_dir(graph, tmp_path / "onnx", "onnx")
    check = meta["check"]
    print(f"ONNX Runtime vs PyTorch: max |diff| = {check['max_abs_diff_mev']:.3g} MeV "
          f"(largest voxel {check['max_abs_reference_mev']:.3g} MeV)")
    assert check["runtime"].startswith("onnxruntime") and check["n_showers"] == 3
    assert check["max_abs_diff_mev"] <= 1e-3 * check["max_abs_reference_mev"]
    # independent run at another batch size (the batch axis is dynamic)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    e, z = _energies(5), make_noise(graph.spec.noise_parts, 5, 3)
    (showers,) = session.run(["showers"], {"incident_energy": e, "noise": z})
    with torch.no_grad():
        ref = graph(torch.from_numpy(e), torch.from_numpy(z)).numpy()
    diff = float(np.abs(showers - ref).max())
    print(f"batch 5: max |diff| = {diff:.3g} MeV of {ref.max():.3g}")
    assert showers.shape == (5, 6480) and diff <= 1e-3 * ref.max()
    # metadata: file and embedded copy
    on_disk = json.loads((out / "metadata.json").read_text())
    embedded = json.loads({p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}["caloforge"])
    for m in (on_disk, embedded):
        assert m["geometry_name"] == "ds2" and m["n_voxels"] == 6480 and len(m["geometry"]["layers"]) == 45
        assert m["units"] == {"incident_energy": "MeV", "showers": "MeV"}
        assert m["voxel_order"] == "calochallenge" and m["sampler"] == "heun" and m["steps"] == 2
        assert m["layer_steps"] == 3
        assert [i["name"] for i in m["inputs"]] == ["incident_energy", "noise"]
        assert m["inputs"][1]["shape"] == [-1, 6526] and m["outputs"][0]["shape"] == [-1, 6480]
    assert on_disk["check"]["max_abs_diff_mev"] == check["max_abs_diff_mev"]


def test_torchscript_round_trip(tmp_path, graph):
    out, meta = write_export_dir(graph, tmp_path / "ts", "torchscript")
    print(f"TorchScript vs PyTorch: max |diff| = {meta['check']['max_abs_diff_mev']:.3g} MeV")
    assert meta["check"]["max_abs_diff_mev"] <= 1e-5 * meta["check"]["max_abs_reference_mev"]
    extra = {"caloforge.json": ""}
    with pytest.warns(DeprecationWarning):  # torch.jit is deprecated upstream but is what libtorch loads
        module = torch.jit.load(str(out / "model.pt"), _extra_files=extra)
    assert json.loads(extra["caloforge.json"])["sampler"] == "heun"
    e, z = _energies(2), make_noise(graph.spec.noise_parts, 2, 9)
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(e), torch.from_numpy(z)).numpy(),
                                   graph(torch.from_numpy(e), torch.from_numpy(z)).numpy(), rtol=0, atol=1e-5)


def test_par04_voxel_order(tmp_path, graph):
    geometry = graph.spec.geometry
    perm = voxel_permutation(geometry, "par04")
    n_layers, n_alpha, n_r = geometry.grid_shape
    for p in (0, 1, n_layers, 5 * n_alpha * n_layers + 7 * n_layers + 30, geometry.n_voxels - 1):
        r, rest = divmod(p, n_alpha * n_layers)  # Par04: r outermost, then phi, then z (= layer) fastest
        alpha, layer = divmod(rest, n_layers)
        assert perm[p] == geometry.flat_index(layer, alpha, r)
    assert sorted(perm.tolist()) == list(range(geometry.n_voxels))
    par04 = with_voxel_order(graph, "par04")
    out, meta = write_export_dir(par04, tmp_path / "par04", "onnx")
    assert meta["voxel_order"] == "par04" and "layer = z fastest" in meta["voxel_order_formula"]
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    e, z = _energies(2), make_noise(graph.spec.noise_parts, 2, 4)
    (showers,) = session.run(["showers"], {"incident_energy": e, "noise": z})
    with torch.no_grad():
        ref = graph(torch.from_numpy(e), torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(showers, ref[:, perm], rtol=0, atol=1e-3 * ref.max())
    with pytest.raises(CaloforgeError, match="regular readout"):
        voxel_permutation(get_geometry("ds1-photons"), "par04")


def test_stochastic_sampler_refused(model):
    with pytest.raises(CaloforgeError, match="ddpm.*cannot be exported"):
        build_sampler_graph(model, sampler="ddpm", steps=2)


def test_triton_repository_layout(tmp_path, graph):
    model_dir, meta = write_triton_model(graph, tmp_path / "repo", TritonModelOptions(max_batch_size=16))
    config = (model_dir / "config.pbtxt").read_text()
    for text in ('name: "caloforge"', 'backend: "python"', "max_batch_size: 16", 'name: "incident_energy"',
                 "dims: [ 1 ]", 'name: "noise"', "dims: [ 6526 ]", 'name: "showers"', "dims: [ 6480 ]",
                 "dynamic_batching { max_queue_delay_microseconds: 1000 }", 'string_value: "46,6480"'):
        assert text in config
    assert {p.name for p in (model_dir / "1").iterdir()} == {"model.onnx", "model.py", "metadata.json"}
    assert meta["triton"]["max_batch_size"] == 16
    with pytest.raises(CaloforgeError, match="already exists"):
        write_triton_model(graph, tmp_path / "repo", TritonModelOptions(max_batch_size=16))
    unbatched, _ = write_triton_model(graph, tmp_path / "repo", TritonModelOptions("single", 1, dynamic_batching=False))
    assert "dynamic_batching {" not in (unbatched / "config.pbtxt").read_text()


def test_export_command(tmp_path, checkpoint, capsys):
    out = tmp_path / "exported"
    args = ["export", "--model", str(checkpoint), "--format", "torchscript", "--out", str(out),
            "--steps", "2", "--seed", "5"]
    assert main(args) == 0
    assert "max |diff| = " in capsys.readouterr().out
    config = yaml.safe_load((out / EXPORT_CONFIG_FILE).read_text())
    assert config["model"] == str(checkpoint) and config["steps"] == 2 and config["seed"] == 5
    assert (out / "model.pt").is_file() and json.loads((out / "metadata.json").read_text())["source"] == str(checkpoint)
    proc = subprocess.run([sys.executable, "-m", "caloforge", *args], capture_output=True, text=True)
    assert proc.returncode == 2 and "already exists (use --overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_export_model_errors(tmp_path, checkpoint):
    with pytest.raises(CaloforgeError, match="checkpoint not found"):
        export_model(tmp_path / "missing.pt", "onnx", tmp_path / "o")
    with pytest.raises(CaloforgeError, match="unknown export format"):
        export_model(checkpoint, "tflite", tmp_path / "o")  # type: ignore[arg-type]
    assert not (tmp_path / "o").exists()
