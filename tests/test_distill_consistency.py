"""Consistency distillation of a tiny model: the student becomes consistent along its teacher's ODE,
its one-step samples approach the teacher's ODE solution, runs resume exactly, the student loads
and generates through the ordinary model API and CLI, and user errors are one line."""

import h5py
import numpy as np
import pytest
import torch
import yaml
from diffusion_helpers import small_geometry, write_toy_file

from caloforge.cli import main
from caloforge.diffusion import sample
from caloforge.diffusion.schedules import SIGMA_MAX
from caloforge.distill import DistillConfig, distill, distillation_sigmas, is_distilled, teacher_ode_solution
from caloforge.generation import generate_showers, load_model
from caloforge.geometry import write_binning_xml
from caloforge.io import read_showers
from caloforge.train import load_train_config, train

TINY = {"channels": [8, 8], "emb_dim": 16}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distill")
    geometry = small_geometry()
    xml = write_binning_xml(geometry, tmp / "small.xml")
    data = write_toy_file(tmp / "train.h5", 200, geometry, seed=2)
    val = write_toy_file(tmp / "val.h5", 48, geometry, seed=3)
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "geometry": str(xml), "epochs": 6, "batch_size": 32, "layer_batch_size": 64, "warmup_steps": 5,
        "model": {"unet": TINY, "layer_model": {"hidden": 16, "blocks": 1, "emb_dim": 16}},
    }))
    result = train(load_train_config(config), data, tmp / "teacher", progress=False)
    return tmp, data, val, result.model_path


def _config(**kw):
    base = dict(steps=200, batch_size=32, lr=1e-3, val_every=100, val_showers=48, n_levels=18, threads=1)
    return DistillConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def student(teacher):
    tmp, data, val, teacher_path = teacher
    result = distill(_config(), teacher_path, data, tmp / "student", val=val, seed=0, progress=False)
    return result


def test_distillation_makes_the_student_consistent(student):
    first, last = student.history[0], student.history[-1]
    assert first["step"] == 0 and last["step"] == 200 and student.stopped == "steps"
    # error of f(x_t, t) vs the teacher's ODE end point, over all levels: falls >= 2x in 200 steps
    # (measured 0.44 -> 0.13); from pure noise (one-step sampling) it falls too (1.10 -> 0.64)
    assert last["val_consistency_mse"] < 0.5 * first["val_consistency_mse"], student.history
    assert last["val_one_step_mse"] < 0.8 * first["val_one_step_mse"], student.history
    assert (student.out_dir / "history.csv").is_file() and (student.out_dir / "config.yaml").is_file()


def test_one_step_samples_approach_the_teacher_ode(teacher, student):
    """Independent of the run's own validation: fresh noise, fresh conditions."""
    _, _, _, teacher_path = teacher
    t, s = load_model(teacher_path).model, load_model(student.model_path).model
    gen = torch.Generator().manual_seed(11)
    energies, showers = read_showers(teacher[2])
    batch = t.encode(torch.from_numpy(energies), torch.from_numpy(showers))
    cond = t.voxel_condition(batch.energy_cond, batch.layers)
    noise = torch.randn(batch.voxels.shape, generator=gen)
    sigmas = distillation_sigmas(18)
    top = torch.full((noise.shape[0],), 17)
    ode = teacher_ode_solution(t, noise * SIGMA_MAX, top, cond, sigmas)

    def one_step(model):
        return sample("consistency", model.voxel_denoiser, noise.shape, cond, 1,
                      generator=torch.Generator().manual_seed(11))  # same start noise as `noise`

    before = float((one_step(t) - ode).square().mean())
    after = float((one_step(s) - ode).square().mean())
    assert after < 0.8 * before, (before, after)


def test_student_checkpoint_round_trip(teacher, student):
    _, _, _, teacher_path = teacher
    t, s = load_model(teacher_path), load_model(student.model_path)
    assert is_distilled(s.meta) and not is_distilled(t.meta)
    info = s.meta["training"]["distillation"]
    assert info["step"] == 200 and info["sampler"] == "consistency" and info["config"]["n_levels"] == 18
    saved = torch.load(student.model_path, weights_only=True)["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in s.model.state_dict().items())
    # preprocessing and layer-energy model carried over unchanged; the voxel denoiser was trained
    t_sd, s_sd = t.model.state_dict(), s.model.state_dict()
    carried = [k for k in t_sd if not k.startswith("voxel_denoiser.")]
    assert carried and all(torch.equal(t_sd[k], s_sd[k]) for k in carried)
    assert any(not torch.equal(t_sd[k], s_sd[k]) for k in t_sd if k.startswith("voxel_denoiser."))


def test_resume_continues_exactly(teacher, tmp_path):
    tmp, data, val, teacher_path = teacher
    cfg = _config(steps=12, val_every=6, val_showers=8)
    straight = distill(cfg, teacher_path, data, tmp_path / "a", val=val, seed=3, progress=False)
    distill(_config(steps=6, val_every=6, val_showers=8), teacher_path, data, tmp_path / "b", val=val, seed=3,
            progress=False)
    resumed = distill(cfg, teacher_path, data, tmp_path / "b", val=val, seed=3, resume=True, progress=False)
    a = torch.load(straight.model_path, weights_only=True)["state_dict"]
    b = torch.load(resumed.model_path, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["step"] for h in resumed.history] == [0, 6, 12]


def test_generate_cli_samples_the_student(teacher, student, tmp_path):
    base = ["generate", "--model", str(student.model_path), "--n", "9", "--energy", "1:100", "--sampler", "consistency",
            "--layer-steps", "4", "--batch-size", "4", "--seed", "2", "--no-progress"]
    for steps in ("1", "2", "4"):
        assert main(base + ["--steps", steps, "--out", str(tmp_path / f"s{steps}.h5")]) == 0
    assert main(base + ["--steps", "2", "--out", str(tmp_path / "again.h5")]) == 0
    e, s2 = read_showers(tmp_path / "s2.h5")
    assert s2.shape == (9, 192) and np.all(np.isfinite(s2)) and np.all(s2 >= 0)
    assert np.array_equal(s2, read_showers(tmp_path / "again.h5")[1])
    assert not np.array_equal(s2, read_showers(tmp_path / "s1.h5")[1])
    with h5py.File(tmp_path / "s4.h5") as f:
        assert f.attrs["sampler"] == "consistency" and f.attrs["network_evaluations"] == 4
    # energy is carried by the (unchanged) layer model: totals close to the incident energies
    with h5py.File(tmp_path / "s2.h5") as f:  # the student's recommended layer sampler (its file) was used
        assert f.attrs["layer_sampler"] == "dpmpp2m-s20"
    direct = generate_showers(load_model(student.model_path), e, sampler="consistency", steps=2, batch_size=4, seed=2,
                              layer_sampler="dpmpp2m-s20", layer_steps=4)
    assert np.array_equal(direct, s2)
    # bf16 network arithmetic and another layer sampler, recorded in the file; totals stay close
    assert main(base + ["--steps", "2", "--precision", "bf16", "--layer-sampler", "dpmpp2m", "--layer-steps", "6",
                        "--out", str(tmp_path / "bf16.h5")]) == 0
    assert main(base + ["--steps", "2", "--layer-sampler", "dpmpp2m", "--layer-steps", "6",
                        "--out", str(tmp_path / "fp32.h5")]) == 0
    with h5py.File(tmp_path / "bf16.h5") as f:
        assert f.attrs["precision"] == "bf16" and f.attrs["layer_sampler"] == "dpmpp2m"
    lo, hi = read_showers(tmp_path / "bf16.h5")[1].sum(1), read_showers(tmp_path / "fp32.h5")[1].sum(1)
    assert np.all(np.abs(lo / hi - 1) < 0.02), np.abs(lo / hi - 1).max()


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    for needle in needles:
        assert needle in err, err


def test_distill_cli_errors(teacher, student, capsys, tmp_path):
    tmp, data, val, teacher_path = teacher
    out = ["--out", str(tmp_path / "r"), "--no-progress"]
    _one_line_error(capsys, ["distill", "--teacher", str(tmp_path / "none.pt"), "--data", str(data)] + out,
                    "none.pt", "checkpoint not found")
    _one_line_error(capsys, ["distill", "--teacher", str(data), "--data", str(data)] + out, "not a caloforge checkpoint")
    _one_line_error(capsys, ["distill", "--teacher", str(student.model_path), "--data", str(data)] + out,
                    "already a distilled consistency model")
    _one_line_error(capsys, ["distill", "--teacher", str(teacher_path), "--data", str(tmp_path / "no.h5")] + out,
                    "no.h5")
    wrong = write_toy_file(tmp_path / "wrong.h5", 5, small_geometry().__class__.regular(
        "other", n_layers=3, n_alpha=4, n_r=2, r_bin_size_mm=5.0), seed=0)
    _one_line_error(capsys, ["distill", "--teacher", str(teacher_path), "--data", str(wrong)] + out, "wrong.h5", "192")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 10\nlearning_rate: 0.1\n")
    _one_line_error(capsys, ["distill", "--teacher", str(teacher_path), "--data", str(data), "--config", str(bad)] + out,
                    "unknown key(s) ['learning_rate']")
    bad.write_text("steps: 0\n")
    _one_line_error(capsys, ["distill", "--teacher", str(teacher_path), "--data", str(data), "--config", str(bad)] + out,
                    "steps must be > 0")
    _one_line_error(capsys, ["distill", "--teacher", str(teacher_path), "--data", str(data), "--out",
                             str(student.out_dir), "--no-progress"], "already holds a distillation run", "--resume")
    _one_line_error(capsys, ["distill", "--teacher", str(teacher_path), "--data", str(data), "--resume"] + out,
                    "nothing to resume")
    _one_line_error(capsys, ["distill", "--teacher", str(teacher_path), "--data", str(data), "--student",
                             str(teacher_path)] + out, "--student must be a distilled consistency model")
    _one_line_error(capsys, ["refine", "--model", str(student.model_path), "--energy", "1:100", "--n", "2"] + out,
                    "is a distilled consistency student", "ds2-full")
    bad.write_text("shape_weight: -1\n")
    _one_line_error(capsys, ["distill", "--teacher", str(teacher_path), "--data", str(data), "--config", str(bad)] + out,
                    "shape_weight must be >= 0")
    assert not (tmp_path / "r").exists()


def _one_step_shape_mmd(model, data_path, seed=21):
    """Lateral-shape MMD of one-step samples vs the real showers of ``data_path`` (same conditions)."""
    from caloforge.distill.loop import ShapeTerm

    energies, showers = read_showers(data_path)
    batch = model.encode(torch.from_numpy(energies), torch.from_numpy(showers))
    cond = model.voxel_condition(batch.energy_cond, batch.layers)
    term = ShapeTerm(model, batch, batch)
    with torch.no_grad():
        one = sample("consistency", model.voxel_denoiser, batch.voxels.shape, cond, 1,
                     generator=torch.Generator().manual_seed(seed))
        return float(term.loss(one, batch.voxels))


def test_fine_tuning_a_student_with_the_shape_term(teacher, student, tmp_path):
    """``student=`` starts from the given student (its validation numbers at step 0); the shape term
    lowers the lateral-shape MMD of one-step samples against held-out showers."""
    tmp, data, val, teacher_path = teacher
    tuned = distill(_config(steps=80, val_every=40, shape_weight=20.0), teacher_path, data, tmp_path / "ft", val=val,
                    seed=0, progress=False, student=student.model_path)
    start, end = tuned.history[0], student.history[-1]
    assert start["val_one_step_mse"] == pytest.approx(end["val_one_step_mse"], rel=1e-5)
    meta = load_model(tuned.model_path).meta["training"]["distillation"]
    assert meta["init_student"]["source"] == str(student.model_path) and meta["config"]["shape_weight"] == 20.0
    before = _one_step_shape_mmd(load_model(student.model_path).model, val)
    after = _one_step_shape_mmd(load_model(tuned.model_path).model, val)
    # measured 0.38 -> -0.01
    assert after < 0.7 * before, (before, after)
