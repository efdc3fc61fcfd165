"""Full simulation with real Geant4 (a few small showers): physics sanity, reproducibility, voxel
index convention, metadata, and the errors Geant4 itself finds (materials)."""

import subprocess
import sys

import numpy as np
import pytest

from caloforge.errors import ConfigError
from caloforge.fullsim import geant4_seconds_per_shower, load_detector, simulate, simulate_showers
from caloforge.io import file_info, merge_shards, read_extra, read_showers

N = 6


@pytest.fixture(scope="module")
def ds2_files(tmp_path_factory):
    """ds2 electron files at 1 and 10 GeV (N showers each)."""
    folder = tmp_path_factory.mktemp("ds2")
    return {e: simulate(folder / f"e{e}.h5", "ds2", "e-", str(e), N, seed=1, workers=1, progress=False).path
            for e in (1, 10)}


def _longitudinal_cog(showers: np.ndarray, geometry) -> np.ndarray:
    layers = showers @ geometry.layer_matrix
    return (layers * np.arange(geometry.n_layers)).sum(axis=1) / layers.sum(axis=1)


def test_ds2_energy_response_and_depth(ds2_files):
    geo = load_detector("ds2").geometry
    cog = {}
    for e_gev, path in ds2_files.items():
        energies, showers = read_showers(path)
        np.testing.assert_allclose(energies[:, 0], e_gev * 1000.0)
        ratio = showers.sum(axis=1) / energies[:, 0]
        assert 0.85 <= ratio.mean() <= 1.05, ratio
        assert showers.min() >= 0 and np.isfinite(showers).all()
        cog[e_gev] = _longitudinal_cog(showers, geo).mean()
    # shower maximum moves by ln(10) X0 ~ 2.8 readout layers (0.81 X0 each) from 1 to 10 GeV
    assert 1.5 < cog[10] - cog[1] < 4.5, cog


def test_file_metadata_and_cpu_time(ds2_files):
    info = file_info(ds2_files[10])
    assert info.n_showers == N and info.n_voxels == 6480 and "cpu_time_s" in info.extras
    attrs = info.attrs
    assert attrs["geometry"] == "ds2" and attrs["particle"] == "e-" and attrs["seed"] == 1
    assert attrs["generator"].startswith("geant4 11.") and attrs["energy"] == "10"
    assert attrs["detector_description"]["sampling_fraction"] == 0.033
    cpu = read_extra(ds2_files[10], "cpu_time_s")
    assert cpu.shape == (N,) and np.all(cpu > 0)
    assert geant4_seconds_per_shower(ds2_files[10]) == pytest.approx(np.median(cpu))
    # the 10 GeV showers cost about 10x the 1 GeV ones (Geant4 time ~ energy)
    assert geant4_seconds_per_shower(ds2_files[10]) > 4 * geant4_seconds_per_shower(ds2_files[1])
    assert ds2_files[10].with_suffix(".yaml").is_file()


def test_same_seed_same_file_for_any_workers_and_shards(tmp_path):
    common = dict(detector="ds2", particle="e-", energy="1:5", n=4, seed=7, progress=False)
    full = simulate(tmp_path / "full.h5", workers=1, **common).path
    again = simulate(tmp_path / "again.h5", workers=2, chunk_size=1, **common).path
    shards = [simulate(tmp_path / f"s{i}.h5", workers=1, num_shards=2, shard_index=i, **common).path
              for i in (1, 0)]
    merged = merge_shards(shards, tmp_path / "merged.h5")
    e_full, s_full = read_showers(full)
    assert len(np.unique(e_full)) == 4 and np.all((e_full >= 1000) & (e_full <= 5000))
    for other in (again, merged):
        e, s = read_showers(other)
        np.testing.assert_array_equal(e, e_full)
        np.testing.assert_array_equal(s, s_full)
    other_seed = simulate_showers("ds2", "e-", "1:5", 2, seed=8)[1]
    assert not np.array_equal(other_seed, s_full[:2])


@pytest.mark.parametrize("detector, point, expected", [
    # (alpha, r) from alpha = floor((atan2(y, x) + pi) / (2 pi) * n_alpha) and the r edges
    ("ds2", (20.0, 5.0), {5: (8, 4), 8: (8, 4)}),
    ("ds2", (-15.0, -25.0), {5: (2, 6), 8: (2, 6)}),
    ("ds1-photons-like", (30.0, -12.0), {1: (4, 9), 2: (4, 7)}),  # irregular binning
])
def test_voxel_index_convention(detector, point, expected):
    det = load_detector(detector)
    geo = det.geometry
    energies, showers, _ = simulate_showers(det, "gamma", "1", 3, seed=3, offset_mm=point)
    total = showers.sum(axis=0)
    for layer, (alpha, r) in expected.items():
        lo, hi = geo.layer_offsets[layer], geo.layer_offsets[layer + 1]
        hottest = lo + int(np.argmax(total[lo:hi]))
        assert hottest == geo.flat_index(layer, alpha, r)
    x = (total * geo.voxel_eta).sum() / total.sum()
    y = (total * geo.voxel_phi).sum() / total.sum()
    assert abs(x - point[0]) < 3.5 and abs(y - point[1]) < 3.5, (x, y)


def test_pbwo4_homogeneous_response():
    energies, showers, _ = simulate_showers("pbwo4", "e-", "2", 3, seed=5)
    ratio = showers.sum(axis=1) / energies[:, 0]
    assert np.all((ratio > 0.85) & (ratio < 1.0)), ratio  # calibration 1, small lateral/rear leakage


BAD_MATERIAL = """
name: aluminium-calo
radius_mm: 100
stack:
  - repeat: 3
    slabs:
      - {material: %s, thickness_mm: 5}
      - {material: G4_Si, thickness_mm: 0.3, active: true}
readout: {n_layers: 3, n_alpha: 1, n_r: 2, r_bin_mm: 10}
"""


def test_material_without_data_tables_cli(tmp_path):
    path = tmp_path / "al-detector.yaml"
    path.write_text(BAD_MATERIAL % "G4_Al")
    out = tmp_path / "al.h5"
    proc = subprocess.run([sys.executable, "-m", "caloforge", "simulate", "--detector", str(path), "--n", "2",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'G4_Al' contains element(s) Z = [13] without Geant4 EM data tables" in lines[0]
    assert not out.exists() and not out.with_name("al.h5.partial.h5").exists() and not out.with_suffix(".yaml").exists()


def test_unknown_material(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(BAD_MATERIAL % "G4_UNOBTAINIUM")
    with pytest.raises(ConfigError, match="'G4_UNOBTAINIUM' is not a Geant4 NIST material"):
        simulate_showers(path, "e-", "1", 1)


def test_interrupt_keeps_finished_showers(tmp_path):
    import signal
    import time

    out = tmp_path / "int.h5"
    partial = out.with_name("int.h5.partial.h5")
    proc = subprocess.Popen([sys.executable, "-m", "caloforge", "simulate", "--n", "1000", "--energy", "1",
                             "--chunk-size", "2", "--no-progress", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not partial.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert not out.exists()
    info = file_info(partial)  # a valid CaloChallenge file holding the finished chunks
    assert info.n_showers < 1000 and info.n_showers % 2 == 0
