"""``caloforge fastsim`` and ``caloforge fastsim fit``: valid files, reproducibility, errors."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from caloforge.cli import main
from caloforge.fastsim import FastSim, get_detector, gflash_params, load_params, resolve_params, shipped_params
from caloforge.io import file_info, read_showers, validate_file, write_showers


def _run(*args):
    """Run ``caloforge fastsim ARGS`` in a fresh interpreter: (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "caloforge", "fastsim", *args], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def _main_error(capsys, *args):
    """Run ``caloforge fastsim ARGS`` in-process, expecting a user error: its one-line message."""
    capsys.readouterr()
    assert main(["fastsim", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_generate_writes_a_valid_calochallenge_file(tmp_path):
    out = tmp_path / "fs.h5"
    assert main(["fastsim", "--detector", "ds2", "--particle", "e-", "--energy", "1:100", "--n", "300",
                 "--seed", "4", "--params", "gflash", "--out", str(out), "--no-progress"]) == 0
    info = validate_file(out, n_voxels=6480)
    assert info.n_showers == 300
    assert info.attrs["generator"] == "caloforge-fastsim" and info.attrs["geometry"] == "ds2"
    assert info.attrs["particle"] == "e-" and info.attrs["seed"] == 4
    assert info.attrs["params"]["longitudinal"]["t_b"] == pytest.approx(1.0)
    energies, showers = read_showers(out)
    assert energies.shape == (300, 1) and showers.dtype == np.float32
    assert energies.min() >= 1000 and energies.max() <= 1e5
    assert np.all(showers >= 0) and showers.sum(axis=1).min() > 0
    params = load_params(tmp_path / "fs.params.yaml")  # loadable for --params
    assert params.detector == "ds2"
    config = yaml.safe_load((tmp_path / "fs.yaml").read_text())
    assert config["fastsim"]["seed"] == 4 and config["params_file"] == "fs.params.yaml"


def test_same_seed_same_file_and_params_file_round_trip(tmp_path):
    common = ["fastsim", "--energy", "10", "--n", "120", "--seed", "9", "--params", "gflash", "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "a.h5")]) == 0
    assert main(common + ["--out", str(tmp_path / "b.h5"), "--workers", "1"]) == 0
    assert main(["fastsim", "--energy", "10", "--n", "120", "--seed", "9", "--no-progress",
                 "--params", str(tmp_path / "a.params.yaml"), "--out", str(tmp_path / "c.h5")]) == 0
    assert main(["fastsim", "--energy", "10", "--n", "120", "--seed", "10", "--params", "gflash", "--no-progress",
                 "--out", str(tmp_path / "d.h5")]) == 0
    e_a, s_a = read_showers(tmp_path / "a.h5")
    np.testing.assert_array_equal(e_a, 10000.0)
    for other in ("b.h5", "c.h5"):
        e_o, s_o = read_showers(tmp_path / other)
        np.testing.assert_array_equal(e_a, e_o)
        np.testing.assert_array_equal(s_a, s_o)
    assert not np.array_equal(s_a, read_showers(tmp_path / "d.h5")[1])
    # the library call gives the same showers as the command
    det = get_detector("ds2")
    np.testing.assert_array_equal(FastSim(det, gflash_params(det, ["e-"])).sample(e_a[:, 0], seed=9), s_a)


def test_energies_from_a_file(tmp_path):
    ref = write_showers(tmp_path / "ref.h5", np.array([1500.0, 2.0e4, 7.5e4]), np.zeros((3, 6480)))
    out = tmp_path / "fs.h5"
    assert main(["fastsim", "--energy-from", str(ref), "--n", "3", "--params", "gflash", "--out", str(out),
                 "--no-progress"]) == 0
    np.testing.assert_array_equal(read_showers(out)[0][:, 0], [1500.0, 2.0e4, 7.5e4])
    assert main(["fastsim", "--energy-from", str(ref), "--n", "4", "--params", "gflash",
                 "--out", str(tmp_path / "x.h5")]) == 2


def test_irregular_detector_from_the_command(tmp_path):
    out = tmp_path / "ds1.h5"
    assert main(["fastsim", "--detector", "ds1-photons-like", "--particle", "gamma", "--params", "gflash",
                 "--n", "50", "--out", str(out), "--no-progress"]) == 0
    assert file_info(out).n_voxels == 368


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--particle", "pi+", "--params", "gflash"], "hadronic"),
        (["--energy", "abc", "--params", "gflash"], "energy 'abc'"),
        (["--energy", "100:1", "--params", "gflash"], "lower bound"),
        (["--detector", "nope", "--params", "gflash"], "unknown detector"),
        (["--params", "missing.yaml"], "config file not found"),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, args, expected):
    err = _main_error(capsys, "--n", "5", "--out", str(tmp_path / "x.h5"), *args)
    assert expected in err
    assert not (tmp_path / "x.h5").exists()


def test_missing_output_and_existing_output(tmp_path, capsys):
    assert "--out required" in _main_error(capsys, "--n", "5")
    out = tmp_path / "x.h5"
    assert main(["fastsim", "--n", "5", "--params", "gflash", "--out", str(out), "--no-progress"]) == 0
    before = out.read_bytes()
    code, _, err = _run("--n", "5", "--params", "gflash", "--out", str(out))
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before
    assert main(["fastsim", "--n", "6", "--params", "gflash", "--out", str(out), "--overwrite", "--no-progress"]) == 0
    assert file_info(out).n_showers == 6


def test_parameters_of_another_stack_or_malformed_are_refused(tmp_path, capsys):
    assert main(["fastsim", "--n", "5", "--params", "gflash", "--out", str(tmp_path / "a.h5"), "--no-progress"]) == 0
    err = _main_error(capsys, "--detector", "pbwo4", "--n", "5", "--params", str(tmp_path / "a.params.yaml"),
                      "--out", str(tmp_path / "b.h5"))
    assert "fitted for a stack" in err
    bad = yaml.safe_load((tmp_path / "a.params.yaml").read_text())
    bad["spots"]["n_per_gevv"] = 3
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    err = _main_error(capsys, "--n", "5", "--params", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "c.h5"))
    assert "n_per_gevv" in err and "spots" in err


def test_fit_command_writes_loadable_parameters(tmp_path, capsys):
    det = get_detector("ds2")
    energies = np.geomspace(2e3, 5e4, 300)
    data = write_showers(tmp_path / "g4.h5", energies, FastSim(det, gflash_params(det)).sample(energies, seed=1))
    out = tmp_path / "p.yaml"
    assert main(["fastsim", "fit", "--data", str(data), "--detector", "ds2", "--out", str(out), "--n-sim", "300",
                 "--iterations", "1", "--seed", "2", "--no-progress"]) == 0
    params = load_params(out)
    assert params.provenance["data"] == "g4.h5" and params.particles == ["e-", "e+"]
    fit_record = yaml.safe_load((tmp_path / "p.fit.yaml").read_text())
    assert fit_record["fit"]["n_sim"] == 300 and fit_record["comparison"]["long_l1"] < 0.05
    assert main(["fastsim", "--params", str(out), "--n", "10", "--out", str(tmp_path / "f.h5"), "--no-progress"]) == 0
    # same seed, same parameters
    again = tmp_path / "p2.yaml"
    assert main(["fastsim", "fit", "--data", str(data), "--detector", "ds2", "--out", str(again), "--n-sim", "300",
                 "--iterations", "1", "--seed", "2", "--no-progress"]) == 0
    assert again.read_text() == out.read_text()
    assert "file not found" in _main_error(capsys, "fit", "--data", str(tmp_path / "nope.h5"),
                                           "--out", str(tmp_path / "q.yaml"))


@pytest.mark.skipif(shipped_params(get_detector("ds2"), "e-") is None, reason="no shipped ds2 parameters")
def test_shipped_parameters_are_the_default_for_ds2_and_ds3(tmp_path, capsys):
    params = resolve_params(None, get_detector("ds2"), "e-")
    assert params.provenance["source"].startswith("caloforge fastsim fit")
    assert resolve_params(None, get_detector("ds3"), "e+") == params
    out = tmp_path / "ds3.h5"
    assert main(["fastsim", "--detector", "ds3", "--n", "20", "--out", str(out), "--no-progress"]) == 0
    with h5py.File(out) as f:
        assert f["showers"].shape == (20, 40500)
    assert "no fitted FastSim parameters" in _main_error(capsys, "--particle", "gamma", "--n", "5",
                                                         "--out", str(tmp_path / "g.h5"))
