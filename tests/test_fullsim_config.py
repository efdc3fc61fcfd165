"""Full simulation without Geant4: detector descriptions, energy/particle/seed handling, data lookup, CLI errors."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from caloforge.cli import main
from caloforge.errors import ConfigError
from caloforge.fullsim import (
    DETECTOR_PRESETS,
    EnergySpec,
    Geant4DataError,
    check_particle,
    geant4_data_env,
    load_detector,
    shard_range,
)
from caloforge.fullsim.environment import available_elements
from caloforge.fullsim.source import shower_plan
from caloforge.geometry import binning_path

MINIMAL_Z = {1, 6, 7, 8, 14, 18, 26, 29, 74, 82}


def _cli(capsys, *args: str) -> tuple[int, str]:
    """Run ``caloforge simulate ARGS`` in this process: (exit code, stderr)."""
    code = main(["simulate", *args])
    return code, capsys.readouterr().err


def _assert_one_line_error(result: tuple[int, str], text: str) -> None:
    code, err = result
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and text in lines[0] and lines[0].startswith("caloforge simulate: error:"), err


# ---------------------------------------------------------------------------- detectors
def test_ds2_preset_is_the_reference_stack():
    det = load_detector("ds2")
    assert len(det.slabs) == 180 and det.n_active == 90
    assert [(s.material, s.thickness_mm, s.active) for s in det.slabs[:2]] == [("G4_W", 1.4, False), ("G4_Si", 0.3, True)]
    assert all(s == det.slabs[i % 2] for i, s in enumerate(det.slabs))
    assert det.radius_mm == 300 and det.world_material == "G4_Galactic"
    assert det.depth_mm == pytest.approx(153.0)
    geo = det.geometry
    assert geo.name == "ds2" and geo.grid_shape == (45, 16, 9) and geo.is_regular
    np.testing.assert_allclose(geo.layers[0].r_edges, np.arange(10) * 4.65)
    np.testing.assert_array_equal(det.readout_layer_of_active, np.arange(90) // 2)
    np.testing.assert_allclose(det.calibration, np.full(45, 1 / 0.033))


def test_other_presets():
    ds3 = load_detector("ds3")
    assert ds3.geometry.grid_shape == (45, 50, 18) and ds3.slabs == load_detector("ds2").slabs
    ds1 = load_detector("ds1-photons-like")
    assert ds1.geometry.n_voxels == 368 and not ds1.geometry.is_regular and ds1.n_active == 87
    counts = ds1.active_layer_counts
    assert counts[[0, 1, 2, 3, 12]].tolist() == [1, 13, 49, 6, 18] and counts.sum() == 87
    assert {"G4_Pb", "G4_lAr", "G4_Fe", "G4_PLASTIC_SC_VINYLTOLUENE"} <= set(ds1.materials)
    pbwo4 = load_detector("pbwo4")
    assert pbwo4.geometry.grid_shape == (23, 16, 10) and pbwo4.geometry.n_voxels == 3680
    assert set(DETECTOR_PRESETS) == {"ds2", "ds3", "ds1-photons-like", "pbwo4"}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


USER_YAML = """
name: mycalo
radius_mm: 100
stack:
  - repeat: 4
    slabs:
      - {material: G4_Cu, thickness_mm: 5}
      - {material: G4_PLASTIC_SC_VINYLTOLUENE, thickness_mm: 2, %s}
readout: %s
active_per_readout_layer: %s
sampling_fraction: 0.1
"""


def test_user_yaml_detector(tmp_path):
    xml = shutil.copy(binning_path("ds2"), tmp_path / "mybinning.xml")
    det = load_detector(_write(tmp_path / "a.yaml", USER_YAML % ("active: true", "{n_layers: 2, n_alpha: 4, n_r: 5, r_bin_mm: 10}", "2")))
    assert det.geometry.n_voxels == 40 and det.n_active == 4 and det.depth_mm == 28
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.move(xml, sub / "mybinning.xml")
    det = load_detector(_write(tmp_path / "b.yaml", USER_YAML.replace("4,", "90,").replace("repeat: 4", "repeat: 90")
                               % ("active: true", "sub/mybinning.xml", "2")))
    assert det.geometry.n_voxels == 6480  # relative XML path resolved against the YAML folder


@pytest.mark.parametrize("active, readout, per_layer, message", [
    ("activ: true", "ds2", "2", "unknown key(s) ['activ']"),
    ("active: true", "ds2", "2", "4 active slabs but active_per_readout_layer maps 90"),
    ("active: true", "{n_layers: 2, n_alpha: 4, n_r: 5, r_bin_mm: 30}", "2", "beyond the detector radius_mm"),
    ("active: true", "{n_layers: 2, n_alpha: 4, n_r: 5, r_bin_mm: 10}", "[1, 1, 2]", "a list of 2 counts"),
    ("active: true", "missing.xml", "2", "binning file not found"),
    ("active: true", "ds7", "2", "unknown geometry 'ds7'"),
])
def test_user_yaml_errors(tmp_path, active, readout, per_layer, message):
    path = _write(tmp_path / "bad.yaml", USER_YAML % (active, readout, per_layer))
    with pytest.raises(ConfigError) as err:
        load_detector(path)
    assert message in str(err.value) and "bad.yaml" in str(err.value)


def test_unknown_detector_name():
    with pytest.raises(ConfigError, match="unknown detector 'ds9'"):
        load_detector("ds9")


# ---------------------------------------------------------------------------- source
def test_energy_spec():
    assert EnergySpec.parse("10").fixed and str(EnergySpec.parse("10")) == "10"
    spec = EnergySpec.parse("1:100")
    assert (spec.low_gev, spec.high_gev, str(spec)) == (1.0, 100.0, "1:100")
    np.testing.assert_allclose(spec.energy_mev(np.array([0.0, 0.5])), [1000.0, 10000.0])
    for bad, message in [("abc", "expected E or EMIN:EMAX"), ("1:2:3", "expected E or EMIN:EMAX"),
                         ("0", "out of range"), ("20000", "out of range"), ("nan", "expected a number"),
                         ("5:1", "lower bound exceeds")]:
        with pytest.raises(ConfigError, match=message):
            EnergySpec.parse(bad)


def test_particles():
    assert [check_particle(p) for p in ("e-", "e+", "gamma")] == ["e-", "e+", "gamma"]
    with pytest.raises(ConfigError, match="hadronic physics needs the full Geant4 data"):
        check_particle("pi+")
    with pytest.raises(ConfigError, match="unknown particle 'muon'"):
        check_particle("muon")


def test_shower_plan_depends_only_on_seed_and_index():
    spec = EnergySpec.parse("1:100")
    energies, seeds = shower_plan(3, np.arange(10), spec)
    e1, s1 = shower_plan(3, np.arange(4), spec)
    e2, s2 = shower_plan(3, np.arange(4, 10), spec)
    np.testing.assert_array_equal(np.concatenate([e1, e2]), energies)
    np.testing.assert_array_equal(np.concatenate([s1, s2]), seeds)
    assert np.all((energies >= 1000) & (energies <= 100000)) and len(np.unique(seeds[:, 0])) == 10
    assert not np.array_equal(shower_plan(4, np.arange(10), spec)[0], energies)
    np.testing.assert_array_equal(shower_plan(0, np.arange(5), EnergySpec.parse("10"))[0], np.full(5, 10000.0))
    big = shower_plan(1, np.arange(4000), spec)[0]  # log-uniform: log10(E/GeV) uniform on [0, 2]
    assert abs(np.mean(np.log10(big / 1000)) - 1.0) < 0.03


def test_shard_ranges_cover_the_job():
    for n, m in [(10, 3), (7, 7), (10000, 4)]:
        ranges = [shard_range(n, m, i) for i in range(m)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] and a[1] > a[0] for a, b in zip(ranges, ranges[1:]))


# ---------------------------------------------------------------------------- Geant4 data lookup
def test_data_env_from_variables_and_search(tmp_path):
    data = tmp_path / "shared" / "geant4-data"
    (data / "G4EMLOW8.8").mkdir(parents=True)
    (data / "G4ENSDFSTATE3.0").mkdir()
    env = geant4_data_env({"GEANT4_DATA_DIR": str(data)})
    assert env["G4LEDATA"] == str(data / "G4EMLOW8.8") and env["G4ENSDFSTATEDATA"] == str(data / "G4ENSDFSTATE3.0")
    assert env["G4LEVELGAMMADATA"].endswith("PhotonEvaporation-absent")
    given = {"GEANT4_DATA_DIR": str(data), "G4LEDATA": str(data / "G4EMLOW8.8"), "G4LEVELGAMMADATA": "/x"}
    assert geant4_data_env(given)["G4LEVELGAMMADATA"] == "/x"  # user settings are kept
    env = geant4_data_env({}, search=[tmp_path / "nothing", data])
    assert env["GEANT4_DATA_DIR"] == str(data.resolve())
    with pytest.raises(Geant4DataError, match="set GEANT4_DATA_DIR, G4LEDATA, G4ENSDFSTATEDATA and G4LEVELGAMMADATA"):
        geant4_data_env({}, search=[tmp_path / "nothing"])
    with pytest.raises(Geant4DataError, match="does not exist"):
        geant4_data_env({"GEANT4_DATA_DIR": str(tmp_path / "nowhere")})


def test_default_lookup_finds_shared_tables():
    env = geant4_data_env({})
    assert Path(env["G4LEDATA"]).is_dir()
    assert available_elements(env["G4LEDATA"]) >= MINIMAL_Z


# ---------------------------------------------------------------------------- CLI errors (no Geant4 run)
def test_cli_user_errors(tmp_path, capsys):
    out = str(tmp_path / "a.h5")
    _assert_one_line_error(_cli(capsys, "--particle", "proton", "--n", "2", "--out", out),
                           "hadronic physics needs the full Geant4 data tables")
    _assert_one_line_error(_cli(capsys, "--particle", "tau-", "--n", "2", "--out", out), "unknown particle 'tau-'")
    _assert_one_line_error(_cli(capsys, "--energy", "0.5:50000", "--n", "2", "--out", out), "out of range")
    (tmp_path / "exists.h5").write_text("x")
    _assert_one_line_error(_cli(capsys, "--n", "2", "--out", str(tmp_path / "exists.h5")), "already exists")
    _assert_one_line_error(_cli(capsys, "--n", "2", "--out", str(tmp_path / "exists.h5" / "x.h5")), "is not a folder")
    bad = _write(tmp_path / "bad.yaml", (USER_YAML % ("active: true", "ds2", "2")).replace("0.1", "0.1\ncolour: red"))
    _assert_one_line_error(_cli(capsys, "--detector", str(bad), "--n", "2", "--out", out), "unknown key(s) ['colour']")
    _assert_one_line_error(_cli(capsys, "--n", "2", "--num-shards", "2", "--shard-index", "2", "--out", out),
                           "shard index 2 out of range")
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "a.yaml").exists()


def test_cli_missing_geant4_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GEANT4_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.delenv("G4LEDATA", raising=False)
    _assert_one_line_error(_cli(capsys, "--n", "2", "--out", str(tmp_path / "a.h5")), "GEANT4_DATA_DIR")
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "a.h5.partial.h5").exists()
