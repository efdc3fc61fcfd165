"""End-to-end ``evaluate`` / ``caloforge evaluate`` on a small readout: outputs, reproducibility, errors."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from caloforge.cli import main
from caloforge.errors import CaloforgeError, InputFileError, OutputExistsError
from caloforge.evaluate import ClassifierConfig, EvaluateConfig, FPDConfig, KPDConfig, evaluate, synthetic_showers
from caloforge.geometry import CylindricalReadout, write_binning_xml
from caloforge.io import write_showers

GEO = CylindricalReadout.regular("tiny", 4, 4, 3, 5.0)
FAST = EvaluateConfig(
    classifier=ClassifierConfig(hidden_layers=2, width=32, epochs=6, patience=3, batch_size=200, lr=1e-3),
    fpd=FPDConfig(min_samples=200, num_batches=3, num_points=4), kpd=KPDConfig(num_batches=3, batch_size=300),
)
REQUIRED = {"auc_low", "auc_high", "jsd_low", "jsd_high", "fpd", "fpd_err", "kpd", "kpd_err", "separation_power",
            "n_generated", "n_reference", "geometry", "caloforge_version"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    xml = write_binning_xml(GEO, folder / "tiny.xml")
    paths = {"xml": xml}
    for name, kw in (("ref", {"seed": 1}), ("gen", {"seed": 2}), ("wide", {"seed": 3, "width_scale": 3.0})):
        e, s = synthetic_showers(600, GEO, energy_range_mev=(1e3, 1e4), **kw)
        paths[name] = write_showers(folder / f"{name}.h5", e, s, {"geometry": "tiny"})
    return paths


def test_outputs_and_keys(files, tmp_path):
    out = tmp_path / "eval"
    metrics = evaluate(files["gen"], files["ref"], GEO, out, config=FAST, progress=False)
    assert REQUIRED <= set(metrics)
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["n_generated"] == metrics["n_reference"] == 600 and metrics["geometry"] == "tiny"
    sep = metrics["separation_power"]
    assert {"E_ratio", "E_layer_00", "EC_eta_layer_03", "width_phi_layer_01", "sparsity_layer_02",
            "voxel_energy"} <= set(sep)
    assert all(0.0 <= v <= 1.0 for v in sep.values())
    for stem in ("E_ratio", "voxel_energy", "E_layer", "EC_r", "sparsity", "average_shower_layers_00-03"):
        assert (out / "plots" / f"{stem}.png").stat().st_size > 1000
        assert (out / "plots" / f"{stem}.pdf").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "AUC low-level" in report and "](plots/E_layer.png)" in report
    assert "seed: 0" in (out / "config.yaml").read_text() and "timings.json" in {p.name for p in out.iterdir()}
    assert not list(tmp_path.glob(".eval.*"))  # no temporary folders left behind


def test_same_seed_same_metrics_and_refuses_overwrite(files, tmp_path):
    kw = dict(config=FAST, progress=False, plots="none", metrics=["cls-high", "fpd", "kpd"])
    a = evaluate(files["gen"], files["ref"], GEO, tmp_path / "a", seed=3, **kw)
    b = evaluate(files["gen"], files["ref"], GEO, tmp_path / "b", seed=3, **kw)
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()
    assert a["auc_low"] is None and a["separation_power"] == {}
    with pytest.raises(OutputExistsError):
        evaluate(files["gen"], files["ref"], GEO, tmp_path / "a", seed=3, **kw)
    c = evaluate(files["gen"], files["ref"], GEO, tmp_path / "a", seed=4, overwrite=True, **kw)
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["seed"] == 4 and c["seed"] == 4


def test_different_samples_are_flagged(files):
    same = evaluate(files["gen"], files["ref"], GEO, config=FAST, progress=False, metrics=["hist", "fpd", "kpd"])
    wide = evaluate(files["wide"], files["ref"], GEO, config=FAST, progress=False, metrics=["hist", "fpd", "kpd"])
    assert wide["separation_power"]["EC_r_layer_01"] > max(0.2, 5 * same["separation_power"]["EC_r_layer_01"])
    assert wide["fpd"] > 10 * same["fpd"] and wide["kpd"] > wide["kpd_err"] * 5


def test_in_memory_arrays_and_paired(files):
    e, s = synthetic_showers(300, GEO, seed=5)
    m = evaluate((e, s), (e, s * 1.1), GEO, config=FAST, progress=False, metrics=["hist"], paired=True)
    assert m["generated"] == "generated" and m["paired"]["n_showers"] == 300
    assert 0.8 < m["paired"]["ccc_layers"] < 1.0 and m["paired"]["ccc_voxels"] < 1.0
    same = evaluate((e, s), (e, s), GEO, config=FAST, progress=False, metrics=["hist"], paired=True)
    assert same["paired"]["ccc_voxels"] == pytest.approx(1.0) and max(same["separation_power"].values()) == 0.0


def _raw(path, energies, showers, **attrs):
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=energies)
        f.create_dataset("showers", data=showers)
        f.attrs.update(attrs)
    return path


def test_input_errors(files, tmp_path):
    e = np.full((5, 1), 1000.0, np.float32)
    wrong_voxels = _raw(tmp_path / "v.h5", e, np.ones((5, 7), np.float32))
    with pytest.raises(InputFileError, match="7 voxels per shower, expected 48"):
        evaluate(wrong_voxels, files["ref"], GEO, progress=False)
    empty = _raw(tmp_path / "e.h5", np.zeros((0, 1), np.float32), np.zeros((0, GEO.n_voxels), np.float32))
    with pytest.raises(InputFileError, match="no showers"):
        evaluate(files["gen"], empty, GEO, progress=False)
    nan = np.ones((5, GEO.n_voxels), np.float32)
    nan[3, 2] = np.nan
    with pytest.raises(InputFileError, match="NaN"):
        evaluate(_raw(tmp_path / "n.h5", e, nan), files["ref"], GEO, progress=False)
    other = CylindricalReadout.regular("other", 4, 3, 4, 5.0)  # same voxel count, other binning
    mismatch = _raw(tmp_path / "g.h5", e, np.ones((5, 48), np.float32),
                    geometry_description=json.dumps(other.to_dict()))
    with pytest.raises(InputFileError, match="binning differs"):
        evaluate(mismatch, files["ref"], GEO, progress=False)
    with pytest.raises(InputFileError, match="--paired"):
        evaluate(files["gen"], (e, np.ones((5, 48), np.float32)), GEO, progress=False, paired=True)
    with pytest.raises(CaloforgeError, match="unknown"):
        evaluate(files["gen"], files["ref"], GEO, progress=False, metrics=["auc"])


def test_cli_runs_and_prints_summary(files, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["evaluate", "--generated", str(files["gen"]), "--reference", str(files["ref"]), "--geometry",
                 str(files["xml"]), "--out", str(out), "--metrics", "hist,cls-high", "--plots", "none",
                 "--cls-width", "16", "--cls-epochs", "3", "--no-progress", "--seed", "7"])
    assert code == 0
    text = capsys.readouterr().out
    assert "AUC low / high   - / 0." in text and "sep. power E_ratio" in text
    config = (out / "config.yaml").read_text()
    assert "seed: 7" in config and "width: 16" in config and "geometry: tiny" in config
    # the written config.yaml reproduces the run (same seed -> same metrics.json)
    assert main(["evaluate", "--generated", str(files["gen"]), "--reference", str(files["ref"]), "--geometry",
                 str(files["xml"]), "--out", str(tmp_path / "again"), "--config", str(out / "config.yaml"),
                 "--no-progress"]) == 0
    assert (tmp_path / "again" / "metrics.json").read_bytes() == (out / "metrics.json").read_bytes()
    # second run without --overwrite: refused with the one-line error, exit code 2
    assert main(["evaluate", "--generated", str(files["gen"]), "--reference", str(files["ref"]), "--geometry",
                 str(files["xml"]), "--out", str(out), "--metrics", "hist"]) == 2
    assert "already exists (use --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("case, expected", [
    ("voxels", "voxels per shower, expected 6480 of geometry ds2"),
    ("missing", "file not found"),
    ("metrics", "metrics: unknown ['bogus']"),
])
def test_cli_errors_one_line_no_traceback(files, tmp_path, case, expected):
    gen = {"voxels": files["gen"], "missing": tmp_path / "nope.h5", "metrics": files["gen"]}[case]
    geometry = str(files["xml"]) if case == "metrics" else "ds2"
    args = [sys.executable, "-m", "caloforge", "evaluate", "--generated", str(gen), "--reference", str(files["ref"]),
            "--geometry", geometry, "--out", str(tmp_path / "o")]
    if case == "metrics":
        args += ["--metrics", "hist,bogus"]
    proc = subprocess.run(args, capture_output=True, text=True)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_irregular_geometry_ds1(tmp_path):
    from caloforge.geometry import get_geometry

    geo = get_geometry("ds1-photons")  # layers of different binnings, 19 layers without voxels
    ref = synthetic_showers(400, geo, seed=1, energy_range_mev=(256.0, 4e6))
    gen = synthetic_showers(400, geo, seed=2, energy_range_mev=(256.0, 4e6))
    m = evaluate(gen, ref, geo, config=FAST, progress=False, metrics=["hist", "cls-high", "fpd", "kpd"])
    assert m["threshold_mev"] == 1.0 and m["classifier_high"]["n_inputs"] == 1 + 5 + 4 * 2
    assert "E_layer_12" in m["separation_power"] and "E_layer_05" not in m["separation_power"]
    assert "EC_eta_layer_01" in m["separation_power"] and "EC_eta_layer_00" not in m["separation_power"]


def test_plots_all_one_figure_per_feature(tmp_path):
    geo = CylindricalReadout.regular("one", 1, 2, 2, 5.0)
    ref, gen = synthetic_showers(200, geo, seed=1), synthetic_showers(200, geo, seed=2)
    evaluate(gen, ref, geo, tmp_path / "all", config=FAST, progress=False, metrics=["hist"], plots="all")
    names = {p.name for p in (tmp_path / "all" / "plots" / "features").iterdir()}
    assert {"E_layer_00.png", "EC_phi_layer_00.pdf", "width_r_layer_00.png", "sparsity_layer_00.pdf"} <= names
    assert len(names) == 2 * 8  # 8 per-layer features of the single layer, PNG + PDF
