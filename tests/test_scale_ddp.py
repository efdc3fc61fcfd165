"""Distributed training: 2 gloo processes on CPU (torch.multiprocessing and the real ``torchrun``)
train exactly like one process on the same global batch; parameters and EMA are identical on both
ranks; a killed run resumes; errors stop every rank with one line."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import yaml
from diffusion_helpers import small_geometry, write_toy_file

from caloforge.geometry import write_binning_xml
from caloforge.train import load_train_config, load_training_state, train
from caloforge.train.distributed import SINGLE, DistContext

# Stated tolerances for 2 processes against 1 on the same global batches: the runs differ only in
# floating-point summation order (gradient all-reduce, per-rank partial sums); measured differences
# are 1.4e-7 relative on the losses and 2.8e-6 absolute on the weights (EMA 2.7e-6) after 36 AdamW
# steps (Adam's normalisation amplifies rounding where gradients are near zero).
LOSS_RTOL = 1e-5
PARAM_ATOL = 5e-5
EPOCHS = 12
LOSS_KEYS = ("train_voxel_loss", "train_layer_loss", "val_voxel_loss", "val_layer_loss")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    geometry = small_geometry()
    xml = write_binning_xml(geometry, tmp / "small.xml")
    # 17 training showers, global batch 8: steps of 8, 8 and 1 showers (the last leaves rank 1 without
    # a row); 300 validation showers: chunks of 256 and 44, one per rank; odd layer batch (8 + 7)
    data = write_toy_file(tmp / "train.h5", 17, geometry, seed=1)
    val = write_toy_file(tmp / "val.h5", 300, geometry, seed=2)
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "geometry": str(xml), "epochs": EPOCHS, "batch_size": 8, "layer_batch_size": 15, "warmup_steps": 2,
        "patience": 0, "val_max_showers": 300,
        "model": {"unet": {"channels": [8, 8], "emb_dim": 16}, "layer_model": {"hidden": 16, "blocks": 1, "emb_dim": 16}},
    }))
    single = train(load_train_config(config), data, tmp / "single", val=val, seed=3, progress=False)
    return tmp, config, data, val, single


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank, world, port, config, data, val, out, dump):
    """One rank of a torchrun-like launch; records its final raw and EMA weights."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), CALOFORGE_DIST_BACKEND="gloo")
    import caloforge.train.loop as loop

    seen = {}

    class RecordingEMA(loop.EMA):  # the real EMA; remembers what it averages
        def update(self, model):
            seen["model"], seen["ema"] = model, self
            super().update(model)

    loop.EMA = RecordingEMA
    result = train(load_train_config(config), data, out, val=val, seed=3, progress=False)
    torch.save({"model": seen["model"].state_dict(), "ema": seen["ema"].model.state_dict(),
                "history": result.history, "steps": result.steps}, dump)


def _assert_close_history(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a["step"] == b["step"] and a["lr"] == b["lr"]
        for key in LOSS_KEYS:
            assert a[key] == pytest.approx(b[key], rel=LOSS_RTOL), (a["epoch"], key)


def test_split_of_a_global_batch_is_exact():
    losses = torch.arange(1.0, 8.0)  # per-sample losses of a global batch of 7
    for world in (2, 3, 8):
        ranks = [DistContext(rank=r, world_size=world) for r in range(world)]
        rows = [ctx.rows(7) for ctx in ranks]
        covered = sorted(int(i) for ctx, r in zip(ranks, rows) if ctx.rank < 7 for i in r)
        assert covered == list(range(7))  # every row once (a rank beyond the batch gets a zero-weight row)
        # DDP averages the ranks' gradients: the mean of the ranks' shares is the global mean
        shares = [ctx.batch_mean(losses[r], 7) for ctx, r in zip(ranks, rows)]
        assert float(sum(shares) / world) == pytest.approx(4.0, rel=1e-7)
    assert SINGLE.rows(7) == slice(None) and float(SINGLE.batch_mean(losses, 7)) == 4.0


def test_two_gloo_processes_match_one(setup, tmp_path):
    tmp, config, data, val, single = setup
    dumps = [tmp_path / f"rank{r}.pt" for r in range(2)]
    ctx = torch.multiprocessing.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_rank_worker, args=(r, 2, port, config, data, val, tmp_path / "run", dumps[r]))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    ranks = [torch.load(d, weights_only=True) for d in dumps]
    # identical on both ranks, bit for bit: raw weights, EMA weights, all-reduced losses
    for key in ("model", "ema"):
        for name, value in ranks[0][key].items():
            assert torch.equal(value, ranks[1][key][name]), (key, name)
    drop_time = [[{k: v for k, v in h.items() if k != "elapsed_s"} for h in r["history"]] for r in ranks]
    assert drop_time[0] == drop_time[1]
    # the same as one process on the same global batches, within the stated tolerance
    assert ranks[0]["steps"] == single.steps == 3 * EPOCHS
    _assert_close_history(ranks[0]["history"], single.history)
    reference = load_training_state(tmp / "single" / "last.pt")
    for name, value in reference["model"].items():
        torch.testing.assert_close(ranks[0]["model"][name], value, atol=PARAM_ATOL, rtol=0)
    for name, value in reference["ema"]["model"].items():
        torch.testing.assert_close(ranks[0]["ema"][name], value, atol=PARAM_ATOL, rtol=0)
    # rank 0 alone wrote the run folder
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml", "history.csv", "last.pt", "model.pt"]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["world_size"] == 2


def _torchrun(config, data, val, out, *extra, **popen):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "caloforge",
           "train", "--config", str(config), "--data", str(data), "--val", str(val), "--out", str(out), "--seed", "3",
           "--no-progress", *extra]
    env = {**os.environ, "CALOFORGE_DIST_BACKEND": "gloo"}
    if popen:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_torchrun_killed_run_resumes(setup, tmp_path):
    tmp, config, data, val, single = setup
    out = tmp_path / "run"
    proc = _torchrun(config, data, val, out, start_new_session=True)
    deadline = time.monotonic() + 240
    while not (out / "last.pt").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # kill torchrun and both ranks mid-run
    proc.wait()
    killed_at = load_training_state(out / "last.pt")["epoch"]
    assert 1 <= killed_at < EPOCHS
    # starting over into the same folder: every rank stops with the same one-line error, no hang
    again = _torchrun(config, data, val, out)
    # (the two ranks write to one stderr at the same moment, so their lines may interleave: count messages)
    output = again.stdout + again.stderr
    assert again.returncode != 0
    assert output.count("caloforge train: error") == 2 and output.count("already holds a training run") == 2
    # resume: all ranks load rank 0's last.pt and finish the run as if never interrupted
    resumed = _torchrun(config, data, val, out, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (resumed.stdout + resumed.stderr).count("trained 12 epochs") == 1  # rank 0 reports, once
    final = load_training_state(out / "last.pt")
    assert final["epoch"] == EPOCHS and final["step"] == single.steps
    _assert_close_history(final["history"], single.history)
    reference = load_training_state(tmp / "single" / "last.pt")
    for name, value in reference["ema"]["model"].items():
        torch.testing.assert_close(final["ema"]["model"][name], value, atol=PARAM_ATOL, rtol=0)


def test_bad_distributed_environment_is_one_clear_line(monkeypatch):
    from caloforge.errors import CaloforgeError
    from caloforge.train.distributed import process_group

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    for backend, message in (("gloo", "cannot join the process group (gloo, rank 0 of 2)"),
                             ("mpi", "expected 'gloo' or 'nccl'")):
        monkeypatch.setenv("CALOFORGE_DIST_BACKEND", backend)
        with pytest.raises(CaloforgeError) as info:
            with process_group():
                pass
        assert message in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(CaloforgeError, match="must be integers"):
        with process_group():
            pass
