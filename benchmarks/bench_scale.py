"""Scale: data-parallel training throughput (1 vs 2 processes) and peak memory of generation vs N.

Training: the same run (``--config``, a few epochs on ``--n-train`` showers of ``--data``) as one
process with 1 and with 2 torch threads, and under ``torchrun --nproc_per_node=2`` (DDP, gloo, 1
thread per process). Throughput = training showers per second over the epochs after the first
(each epoch includes one validation pass on ``val_max_showers``); process start-up is excluded
and shown separately as the total wall time.

Memory: ``caloforge generate`` of N showers (a fresh process each, ``--sampler ddim --steps 1``
to keep it cheap: memory does not depend on the step count), peak resident memory (ru_maxrss)
next to the size the showers would take in memory (N x V x 4 bytes). Flat peak memory across N
means the job streams to disk; a 1M-shower job then needs the same memory as the largest N here.

    python benchmarks/bench_scale.py                              # FastSim ds2 data, ds2 model config
    python benchmarks/bench_scale.py --data ds2_e-_train.h5 --n-gen 1000,10000,100000

Data default: ``caloforge fastsim`` ds2 electrons 1-100 GeV (fast to make; the numbers do not
depend on the physics). The machine this ran on is shared: timings are noisy, say so.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MAXRSS = ("import resource, sys; from caloforge.cli import main; rc = main(sys.argv[1:]); "
          "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")


def _run(cmd: list[str], env: dict | None = None) -> tuple[str, float]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr, wall


def _train_row(label: str, procs: int, threads: int, args, data: Path, work: Path) -> tuple[str, Path]:
    config = yaml.safe_load(Path(args.config).read_text())
    config.update(epochs=args.epochs, batch_size=args.batch_size, max_train_showers=args.n_train, threads=threads,
                  val_max_showers=args.n_val, patience=0, max_minutes=None, warmup_steps=2)
    cfg_path = work / f"train_{procs}x{threads}.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    out = work / f"run_{procs}x{threads}"
    train = ["-m", "caloforge", "train", "--config", str(cfg_path), "--data", str(data), "--out", str(out),
             "--no-progress", "--seed", "1"]
    if procs == 1:
        cmd = [sys.executable, *train]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", *train]
    _, wall = _run(cmd, env={"CALOFORGE_DIST_BACKEND": "gloo"})
    history = list(csv.DictReader((out / "history.csv").open()))
    n_train = yaml.safe_load((out / "config.yaml").read_text())["n_train"]
    span = float(history[-1]["elapsed_s"]) - float(history[0]["elapsed_s"])
    rate = n_train * (len(history) - 1) / span
    steps = int(history[-1]["step"]) - int(history[0]["step"])
    row = (f"| {label} | {procs} | {threads} | {args.batch_size} | {args.batch_size / procs:g} | {steps} | "
           f"{rate:.1f} | {span / steps:.2f} | {wall:.0f} | {float(history[-1]['val_voxel_loss']):.4f} |")
    return row, out


def _memory_row(n: int, model: Path, args, work: Path, n_voxels: int) -> str:
    out = work / f"gen_{n}.h5"
    cmd = [sys.executable, "-c", MAXRSS, "generate", "--model", str(model), "--n", str(n), "--energy", "1:100",
           "--sampler", "ddim", "--steps", "1", "--layer-steps", "1", "--batch-size", str(args.gen_batch),
           "--threads", str(args.gen_threads), "--no-progress", "--out", str(out)]
    text, wall = _run(cmd)
    rss_gib = int(text.split("MAXRSS_KB")[1].split()[0]) / 2**20
    size = out.stat().st_size / 2**30
    out.unlink()
    out.with_suffix(".yaml").unlink()
    return (f"| {n} | {args.gen_batch} | {rss_gib:.2f} | {n * n_voxels * 4 / 2**30:.2f} | {size:.2f} | "
            f"{wall:.0f} | {n / wall:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "ds2_electrons.yaml"), help="training config")
    parser.add_argument("--data", default=None, help="ds2 training file (default: made with caloforge fastsim)")
    parser.add_argument("--n-train", type=int, default=512, help="training showers (default 512)")
    parser.add_argument("--n-val", type=int, default=32, help="validation showers per epoch (default 32)")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch (default 64)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs; the first is not timed (default 3)")
    parser.add_argument("--n-gen", default="1000,4000,16000", help="showers per generation job (default %(default)s)")
    parser.add_argument("--gen-batch", type=int, default=100, help="generation batch size (default 100)")
    parser.add_argument("--gen-threads", type=int, default=1, help="generation threads (default 1)")
    parser.add_argument("--model", default=None, help="model for the memory test (default: the one trained here)")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--workdir", default=None, help="keep files here (default: a temporary folder)")
    args = parser.parse_args()

    import torch

    from caloforge.geometry import get_geometry

    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="bench_scale_")
    work = Path(args.workdir or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores (shared machine: timings are noisy), "
          f"config {Path(args.config).name}")
    data = Path(args.data) if args.data else work / "fastsim_ds2.h5"
    if not data.exists():
        _run([sys.executable, "-m", "caloforge", "fastsim", "--detector", "ds2", "--energy", "1:100", "--n",
              str(args.n_train + args.n_val + 64), "--seed", "1", "--no-progress", "--out", str(data)])
    model = Path(args.model) if args.model else None
    if not args.skip_train:
        print(f"\nTraining throughput ({data.name}, {args.epochs} epochs, first not timed; DDP: gloo)\n")
        print("| run | processes | threads/process | global batch | batch/process | timed steps | showers/s | "
              "s/step | wall s (incl. start-up) | final val voxel loss |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, procs, threads in (("caloforge train", 1, 1), ("caloforge train", 1, 2),
                                      ("torchrun --nproc_per_node=2", 2, 1)):
            row, out = _train_row(label, procs, threads, args, data, work)
            print(row, flush=True)
            model = model or out / "model.pt"
    if args.skip_memory:
        return
    if model is None:
        sys.exit("--skip-train needs --model")
    n_voxels = get_geometry("ds2").n_voxels
    print(f"\nPeak memory of `caloforge generate` ({model.name}, ds2 {n_voxels} voxels, ddim 1 step, "
          f"{args.gen_threads} thread(s), gzip)\n")
    print("| N showers | batch | peak RSS GiB | showers in memory would be GiB | file GiB | wall s | showers/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.n_gen.split(",")):
        print(_memory_row(n, model, args, work, n_voxels), flush=True)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
