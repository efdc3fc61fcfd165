"""Sharded generation: shards merged with ``caloforge merge`` equal the single job bit for bit;
mismatched shards are refused with one line; the example batch-system scripts really run."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from diffusion_helpers import small_geometry, toy_showers

from caloforge.cli import main
from caloforge.diffusion import ModelConfig, ShowerDiffusionModel
from caloforge.generation import generate_file
from caloforge.generation.generate import shard_showers
from caloforge.io import file_info, read_showers
from caloforge.nn import LayerMLPConfig, UNetConfig
from caloforge.train import save_model_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# 23 showers in batches of 4 = 6 batches; 3 shards of 2 batches: showers [0, 8), [8, 16), [16, 23)
# (one thread: fast on a busy machine, and the same thread count in every run)
JOB = {"n": 23, "energy": "1:100", "sampler": "ddim", "steps": 2, "layer_steps": 2, "batch_size": 4, "seed": 5, "threads": 1}


def _job_args(model, **override):
    job = {**JOB, **override}
    return ["generate", "--model", str(model), "--n", str(job["n"]), "--energy", job["energy"], "--sampler",
            job["sampler"], "--steps", str(job["steps"]), "--layer-steps", str(job["layer_steps"]), "--batch-size",
            str(job["batch_size"]), "--seed", str(job["seed"]), "--threads", str(job["threads"]), "--no-progress"]


def _bytes(path):
    energies, showers = read_showers(path)
    return energies.tobytes(), showers.tobytes()


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A randomly initialised tiny model (preprocessing fitted on toy showers) and its unsharded job."""
    tmp = tmp_path_factory.mktemp("shards")
    geometry = small_geometry()
    energies, showers = toy_showers(64, geometry, seed=3)
    torch.manual_seed(0)
    model = ShowerDiffusionModel(geometry, ModelConfig(unet=UNetConfig(channels=[8, 8], emb_dim=16),
                                                       layer_model=LayerMLPConfig(hidden=16, blocks=1, emb_dim=16)))
    model.fit_preprocessing(torch.from_numpy(energies), torch.from_numpy(showers))
    path = save_model_file(tmp / "model.pt", model, {"note": "random initialisation"})
    single = generate_file(tmp / "single.h5", path, progress=False, **{k: v for k, v in JOB.items()})
    assert single.n_showers == 23
    return tmp, path, single.path


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    for needle in needles:
        assert needle in err, err


def test_shard_ranges_are_whole_batches():
    assert [shard_showers(23, 4, 3, i) for i in range(3)] == [(0, 8), (8, 16), (16, 23)]
    assert [shard_showers(10, 100, 1, 0), shard_showers(0, 100, 1, 0)] == [(0, 10), (0, 0)]
    bounds = [shard_showers(1_000_000, 100, 7, i) for i in range(7)]
    assert bounds[0][0] == 0 and bounds[-1][1] == 1_000_000
    assert all(a[1] == b[0] and a[1] % 100 == 0 for a, b in zip(bounds, bounds[1:]))


def test_shards_merge_to_the_single_job_bit_for_bit(job, tmp_path):
    tmp, model, single = job
    shards = [tmp_path / f"gen_{i}.h5" for i in range(3)]
    for i in (2, 0, 1):  # any order
        assert main(_job_args(model) + ["--num-shards", "3", "--shard-index", str(i), "--out", str(shards[i])]) == 0
    assert [file_info(p).n_showers for p in shards] == [8, 8, 7]
    with h5py.File(shards[1]) as f:
        assert (f.attrs["num_shards"], f.attrs["shard_index"], f.attrs["n"]) == (3, 1, 23)
        assert f.attrs["shower_indices"] == "[8, 16]"
    assert main(["merge", *map(str, reversed(shards)), "--out", str(tmp_path / "merged.h5")]) == 0
    assert _bytes(tmp_path / "merged.h5") == _bytes(single)
    merged = file_info(tmp_path / "merged.h5")
    assert merged.attrs["shower_indices"] == [0, 23] and "shard_index" not in merged.attrs
    # the same with energies taken from a file
    base = ["generate", "--model", str(model), "--energies-from", str(single), "--steps", "2", "--layer-steps", "2",
            "--batch-size", "5", "--seed", "9", "--threads", "1", "--no-progress"]
    assert main(base + ["--out", str(tmp_path / "from_all.h5")]) == 0
    parts = [tmp_path / f"from_{i}.h5" for i in range(2)]
    for i, part in enumerate(parts):
        assert main(base + ["--num-shards", "2", "--shard-index", str(i), "--out", str(part)]) == 0
    assert main(["merge", *map(str, parts), "--out", str(tmp_path / "from_merged.h5")]) == 0
    assert _bytes(tmp_path / "from_merged.h5") == _bytes(tmp_path / "from_all.h5")


def test_mismatched_shards_are_refused(job, tmp_path, capsys):
    tmp, model, _ = job
    good = []
    for i in range(3):
        good.append(tmp_path / f"g{i}.h5")
        assert main(_job_args(model) + ["--num-shards", "3", "--shard-index", str(i), "--out", str(good[i])]) == 0
    other_seed, other_batch, two_shards = tmp_path / "seed.h5", tmp_path / "batch.h5", tmp_path / "two.h5"
    assert main(_job_args(model, seed=6) + ["--num-shards", "3", "--shard-index", "1", "--out", str(other_seed)]) == 0
    assert main(_job_args(model, batch_size=3) + ["--num-shards", "3", "--shard-index", "1",
                                                   "--out", str(other_batch)]) == 0
    assert main(_job_args(model) + ["--num-shards", "2", "--shard-index", "1", "--out", str(two_shards)]) == 0
    out = ["--out", str(tmp_path / "m.h5")]
    _one_line_error(capsys, ["merge", str(good[0]), str(other_seed), str(good[2])] + out, "seed.h5", "attribute 'seed'")
    _one_line_error(capsys, ["merge", str(good[0]), str(other_batch), str(good[2])] + out, "attribute 'batch_size'")
    _one_line_error(capsys, ["merge", str(good[0]), str(two_shards), str(good[2])] + out, "attribute 'num_shards'")
    _one_line_error(capsys, ["merge", str(good[0]), str(good[2])] + out, "shard indices [0, 2]", "[0, 1, 2]")
    _one_line_error(capsys, ["merge", str(good[0]), str(good[1]), str(good[1])] + out, "[0, 1, 1]")
    assert not (tmp_path / "m.h5").exists()
    # shard options that cannot work
    _one_line_error(capsys, _job_args(model) + ["--num-shards", "3", "--shard-index", "3"] + out,
                    "--shard-index 3 is out of range for --num-shards 3")
    _one_line_error(capsys, _job_args(model) + ["--num-shards", "7", "--shard-index", "0"] + out,
                    "more than the 6 batch(es)")


def _env(**extra):
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **extra}


def test_slurm_generate_array_and_merge(job, tmp_path):
    tmp, model, single = job
    env = dict(MODEL=str(model), N="23", ENERGY="1:100", SEED="5", BATCH="4", OUT_DIR=str(tmp_path / "shards"),
               EXTRA="--sampler ddim --steps 2 --layer-steps 2", SLURM_ARRAY_TASK_COUNT="3", SLURM_CPUS_PER_TASK="1")
    for i in range(3):
        subprocess.run(["bash", str(EXAMPLES / "slurm" / "generate.sh")], cwd=tmp_path, check=True,
                       env=_env(**env, SLURM_ARRAY_TASK_ID=str(i)), capture_output=True)
    subprocess.run(["bash", str(EXAMPLES / "slurm" / "merge.sh")], cwd=tmp_path, check=True,
                   env=_env(OUT_DIR=str(tmp_path / "shards")), capture_output=True)
    assert _bytes(tmp_path / "generate.h5") == _bytes(single)


def _submit_commands(sub: Path, processes: int, **macros) -> list[list[str]]:
    """The command lines condor_submit would start for ``sub`` (``key = value`` macros, overridden
    like ``condor_submit key=value``; ``$(Process)`` = 0 .. processes - 1)."""
    values = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", sub.read_text(), flags=re.M))
    values.update({k: str(v) for k, v in macros.items()})
    commands = []
    for process in range(processes):
        def expand(text, depth=0):
            text = re.sub(r"\$ENV\((\w+)\)", lambda m: os.environ.get(m.group(1), ""), text)
            out = re.sub(r"\$\((\w+)\)", lambda m: str(process) if m.group(1) == "Process" else values[m.group(1)], text)
            return out if out == text or depth > 5 else expand(out, depth + 1)
        args = shlex.split(expand(values["arguments"]).strip('"'))
        commands.append([Path(expand(values["executable"])).name, *args])
    return commands


def test_htcondor_submit_files(job, tmp_path, monkeypatch):
    tmp, model, single = job
    monkeypatch.chdir(tmp_path)
    generate = _submit_commands(EXAMPLES / "htcondor" / "generate.sub", 3, model=model, n=23, batch=4, seed=5,
                                threads=1, shards=3)
    assert re.search(r"^queue \$\(shards\)$", (EXAMPLES / "htcondor" / "generate.sub").read_text(), flags=re.M)
    (tmp_path / "shards").mkdir()
    for command in generate:
        assert command[0] == "caloforge"
        assert main(command[1:] + ["--sampler", "ddim", "--steps", "2", "--layer-steps", "2"]) == 0
    (merge,) = _submit_commands(EXAMPLES / "htcondor" / "merge.sub", 1)
    assert merge[:2] == ["sh", "-c"]
    subprocess.run(["/bin/sh", *merge[1:]], cwd=tmp_path, env=_env(), check=True, capture_output=True)
    assert _bytes(tmp_path / "generate.h5") == _bytes(single)
    # the Geant4 submit file: valid `caloforge simulate` options for every process
    from caloforge.cli import build_parser

    for command in _submit_commands(EXAMPLES / "htcondor" / "simulate.sub", 20):
        args = build_parser().parse_args(command[1:])
        assert args.command == "simulate" and args.num_shards == 20 and 0 <= args.shard_index < 20


def test_slurm_simulate_array_and_merge(tmp_path):
    env = dict(N="2", ENERGY="1", SEED="4", OUT_DIR=str(tmp_path / "shards"), SLURM_ARRAY_TASK_COUNT="2",
               SLURM_CPUS_PER_TASK="1")
    for i in range(2):
        subprocess.run(["bash", str(EXAMPLES / "slurm" / "simulate.sh")], cwd=tmp_path, check=True,
                       env=_env(**env, SLURM_ARRAY_TASK_ID=str(i)), capture_output=True)
    subprocess.run(["bash", str(EXAMPLES / "slurm" / "merge.sh")], cwd=tmp_path, check=True,
                   env=_env(OUT_DIR=str(tmp_path / "shards"), PREFIX="simulate"), capture_output=True)
    assert main(["simulate", "--detector", "ds2", "--energy", "1", "--n", "2", "--seed", "4", "--no-progress",
                 "--out", str(tmp_path / "single.h5")]) == 0
    assert _bytes(tmp_path / "simulate.h5") == _bytes(tmp_path / "single.h5")
    assert np.array_equal(file_info(tmp_path / "simulate.h5").attrs["shower_indices"], [0, 2])
