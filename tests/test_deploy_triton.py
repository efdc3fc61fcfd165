"""A real Triton server (``caloforge serve``, bundled tritonserver, loopback only) serving the caloforge model.

One server start per session (module fixture). It runs ``caloforge serve`` in a subprocess, which
creates the pinned server venv on first use (about 15-60 s, PyPI), and stops it with SIGTERM at the
end, checking the clean exit. Every request loop is bounded (a handful of requests).
"""

import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
import torch

from caloforge.deploy import (
    ShowerClient,
    TritonModelOptions,
    batch_size_counts,
    free_port,
    generate_remote,
    make_noise,
    voxel_permutation,
)
from caloforge.cli import main
from caloforge.deploy.api import export_model
from caloforge.errors import CaloforgeError
from caloforge.generation import generate_showers, load_model
from caloforge.io import iter_showers
from deploy_helpers import SAMPLER, tiny_checkpoint

MAX_BATCH = 8
PROTOCOLS = ("http", "grpc")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_model(checkpoint)


@pytest.fixture(scope="module")
def server(tmp_path_factory, checkpoint):
    """``caloforge serve`` on free loopback ports; yields {'http': url, 'grpc': url}."""
    work = tmp_path_factory.mktemp("triton")
    export_model(checkpoint, "triton", work / "repo", triton=TritonModelOptions(max_batch_size=MAX_BATCH), **SAMPLER)
    export_model(checkpoint, "triton", work / "repo", triton=TritonModelOptions("par04", max_batch_size=MAX_BATCH),
                 voxel_order="par04", **SAMPLER)
    http, grpc = free_port(), free_port()
    log = work / "serve.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "caloforge", "serve", "--repository", str(work / "repo"),
                                 "--http-port", str(http), "--grpc-port", str(grpc),
                                 "--log-file", str(work / "triton.log")],
                                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 240  # includes creating the server venv from PyPI on a fresh machine
    try:
        while True:
            assert proc.poll() is None, f"caloforge serve exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"server not ready in time:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.5)
        yield {"http": f"http://127.0.0.1:{http}", "grpc": f"grpc://127.0.0.1:{grpc}"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    text = log.read_text()
    assert code == 0, text
    assert "Triton server stopped (exit code 0)" in text


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _energies(n):
    return np.geomspace(1000.0, 100000.0, n).astype(np.float32).reshape(n, 1)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_served_showers_match_in_process_generation(server, model, protocol):
    e = _energies(5)
    with ShowerClient(server[protocol], model_name="caloforge") as client:
        showers = client.infer(e, make_noise(client.noise_parts, 5, 21))
    local = generate_showers(model, e, seed=21, batch_size=5, **SAMPLER)
    diff = float(np.abs(showers - local).max())
    print(f"{protocol}: Triton vs in-process max |diff| = {diff:.3g} MeV (largest voxel {local.max():.3g} MeV)")
    assert showers.shape == (5, 6480) and showers.dtype == np.float32
    assert diff <= 1e-3 * local.max()


def test_generate_remote_equals_generate_showers(server, model):
    e = _energies(11)
    remote = generate_remote(server["grpc"], e, batch_size=4, seed=3, concurrency=3, progress=False)
    local = generate_showers(model, e, seed=3, batch_size=4, **SAMPLER)
    again = generate_remote(server["http"], e, batch_size=4, seed=3, concurrency=1, progress=False)
    assert remote.shape == (11, 6480)
    assert float(np.abs(remote - local).max()) <= 1e-3 * local.max()
    assert float(np.abs(remote - again).max()) <= 1e-3 * local.max()
    with pytest.raises(CaloforgeError, match=f"accepts 1 to {MAX_BATCH} showers"):
        generate_remote(server["http"], e, batch_size=MAX_BATCH + 1, progress=False)


def test_par04_model_serves_permuted_showers(server, model):
    e = _energies(3)
    with ShowerClient(server["grpc"], model_name="par04") as client:
        assert client.served_metadata()["voxel_order"] == "par04"
        showers = client.infer(e, make_noise(client.noise_parts, 3, 8))
    local = generate_showers(model, e, seed=8, batch_size=3, **SAMPLER)
    perm = voxel_permutation(model.geometry, "par04")
    assert float(np.abs(showers - local[:, perm]).max()) <= 1e-3 * local.max()
    with pytest.raises(CaloforgeError, match="emits voxel order 'par04', expected 'calochallenge'"):
        generate_remote(server["grpc"], e, model_name="par04", batch_size=3, progress=False)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_requests_get_errors_and_server_keeps_serving(server, protocol):
    with ShowerClient(server[protocol]) as client:
        _check_bad_requests(client)


def _check_bad_requests(client):
    parts = client.noise_parts
    good_e, good_z = _energies(2), make_noise(parts, 2, 1)
    cases = [
        (np.array([[np.nan], [5000.0]], np.float32), good_z, "must be finite and > 0 MeV; row 0 is nan"),
        (np.array([[5000.0], [-10.0]], np.float32), good_z, "row 1 is -10.0"),
        (np.ones((2, 2), np.float32), good_z, "unexpected shape for input 'incident_energy'"),
        (good_e, good_z[:, :100], "unexpected shape for input 'noise'"),
        (np.full((MAX_BATCH + 1, 1), 5000.0, np.float32), make_noise(parts, MAX_BATCH + 1, 1),
         f"batch-size must be <= {MAX_BATCH}"),
    ]
    reference = client.infer(good_e, good_z)
    for energies, noise, message in cases:
        with pytest.raises(CaloforgeError, match="caloforge") as info:
            client.infer(energies, noise)
        assert message in str(info.value)
        np.testing.assert_array_equal(client.infer(good_e, good_z), reference)  # still serving, same answer


def test_bad_request_in_a_dynamic_batch_fails_alone(server):
    """Concurrent requests are batched together on the server; only the bad one gets an error."""
    with ShowerClient(server["http"]) as client:
        parts = client.noise_parts
    results, errors = {}, {}

    def send(i):
        energy = np.array([[np.nan if i == 2 else 2000.0 * (i + 1)]], np.float32)
        with ShowerClient(server["http"]) as client:
            try:
                results[i] = client.infer(energy, make_noise(parts, 1, i))
            except CaloforgeError as exc:
                errors[i] = str(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(errors) == [2] and "finite and > 0" in errors[2]
    assert sorted(results) == [0, 1, 3, 4, 5] and all(r.shape == (1, 6480) for r in results.values())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_config_metadata_and_statistics(server, protocol):
    with ShowerClient(server[protocol]) as client:
        _check_config_metadata_and_statistics(client)


def _check_config_metadata_and_statistics(client):
    client.infer(_energies(3), make_noise(client.noise_parts, 3, 0))
    config = client.model_config()
    assert config["name"] == "caloforge" and int(config["max_batch_size"]) == MAX_BATCH
    assert "dynamic_batching" in config and config["backend"] == "python"
    dims = {i["name"]: [int(d) for d in i["dims"]] for i in config["input"]}
    assert dims == {"incident_energy": [1], "noise": [6526]}
    assert [int(d) for d in config["output"][0]["dims"]] == [6480]
    served = client.served_metadata()
    assert served["geometry_name"] == "ds2" and served["sampler"] == "heun" and served["steps"] == 2
    assert served["voxel_order"] == "calochallenge" and served["check"]["max_abs_diff_mev"] < 0.1
    meta = client.model_metadata()
    assert meta["name"] == "caloforge" and meta["platform"] == "python"
    assert [(i["name"], i["datatype"], [int(d) for d in i["shape"]]) for i in meta["inputs"]] == [
        ("incident_energy", "FP32", [-1, 1]), ("noise", "FP32", [-1, 6526])]
    assert [(o["name"], [int(d) for d in o["shape"]]) for o in meta["outputs"]] == [("showers", [-1, 6480])]
    stats = client.statistics()
    (model_stats,) = stats["model_stats"]
    assert model_stats["name"] == "caloforge" and int(model_stats["inference_count"]) >= 3
    assert int(model_stats["inference_stats"]["success"]["count"]) >= 1
    counts = batch_size_counts(stats)
    assert counts and all(1 <= b <= MAX_BATCH for b in counts) and sum(counts.values()) >= 1


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(CaloforgeError, match="cannot reach Triton server|Triton"):
        ShowerClient(f"127.0.0.1:{free_port()}", timeout_s=2).model_config()
    with pytest.raises(CaloforgeError, match="scheme must be http:// or grpc://"):
        ShowerClient("ftp://127.0.0.1:1")


def test_generate_cli_with_server_writes_the_in_process_showers(server, model, tmp_path, capsys):
    out = tmp_path / "remote.h5"
    args = ["generate", "--server", server["grpc"], "--energy", "1:100", "--n", "7", "--batch-size", "3",
            "--concurrency", "2", "--seed", "5", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    ((energies, showers),) = list(iter_showers(out, chunk_size=100))
    local = generate_showers(model, energies.reshape(-1, 1), seed=5, batch_size=3, **SAMPLER)
    assert showers.shape == (7, 6480)
    assert float(np.abs(showers - local).max()) <= 1e-3 * local.max()
    assert "server: grpc://127.0.0.1" in out.with_suffix(".yaml").read_text()
    assert main(args) == 2  # never overwrites without --overwrite
    assert "exists" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--sampler", "heun"]) == 2
    assert "--sampler does not apply with --server" in capsys.readouterr().err
