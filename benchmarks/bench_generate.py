"""Generation speed of a caloforge diffusion model on the CPU, next to Geant4's time per shower.

For every sampler/step count and batch size: showers per second (wall clock, including the
layer-energy model and preprocessing), milliseconds per shower and, when a Geant4 file written by
``caloforge simulate`` is given (its ``cpu_time_s``), Geant4's median CPU seconds per shower and
the speed-up. Energies: those of the Geant4 file (same energies for both), else log-uniform 1-100 GeV.

    python benchmarks/bench_generate.py --model default --geant4 ds2_e-_test.h5 --threads 2

Timings on a shared machine are noisy: take the best of ``--repeats`` runs and say so.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from caloforge.diffusion import network_evaluations
from caloforge.generation import energies_from_spec, generate_showers, load_model


def _parse_samplers(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        name, steps = item.split(":")
        out.append((name.strip(), int(steps)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ds2-full", help="an undistilled model.pt or 'ds2-full' (the samplers below need one)")
    parser.add_argument("--samplers", default="ddim:8,ddim:16,ddpm:32,heun:8,heun:16",
                        help="comma-separated NAME:STEPS (default %(default)s)")
    parser.add_argument("--batch-sizes", default="1,100,1000", help="default %(default)s")
    parser.add_argument("--showers-batch1", type=int, default=5, help="showers timed at batch size 1")
    parser.add_argument("--layer-steps", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="take the best of this many runs")
    parser.add_argument("--geant4", default=None, help="CaloChallenge file from `caloforge simulate` (cpu_time_s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    g4_s = None
    if args.geant4:
        from caloforge.fullsim import geant4_seconds_per_shower
        from caloforge.io import ENERGY_KEY, read_extra

        g4_s = geant4_seconds_per_shower(args.geant4)
        pool = read_extra(args.geant4, ENERGY_KEY).astype(np.float32).reshape(-1)
    else:
        pool = energies_from_spec("1:100", 1000, args.seed)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"model {loaded.source} ({loaded.geometry.name}), torch {torch.__version__}, {args.threads} thread(s), "
          f"layer model {'Heun ' + str(args.layer_steps) + ' steps' if loaded.model.has_layer_model else 'none'}")
    if g4_s is not None:
        print(f"Geant4 (from {args.geant4}): median {g4_s:.4f} CPU s/shower over the file's energies")
    head = "| sampler | steps | NFE | batch | showers/s | ms/shower |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if g4_s is not None:
        head += " Geant4 ms/shower | speed-up vs Geant4 |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    # warm-up (allocator, oneDNN kernels)
    generate_showers(loaded, pool[:4], sampler="ddim", steps=2, batch_size=4, layer_steps=2)
    for name, steps in _parse_samplers(args.samplers):
        for batch in batch_sizes:
            n = args.showers_batch1 if batch == 1 else batch
            energies = np.resize(pool, n)
            best = float("inf")
            for r in range(args.repeats):
                start = time.perf_counter()
                generate_showers(loaded, energies, sampler=name, steps=steps, batch_size=batch, seed=args.seed + r,
                                 layer_steps=args.layer_steps)
                best = min(best, time.perf_counter() - start)
            per = best / n
            row = (f"| {name} | {steps} | {network_evaluations(name, steps)} | {batch} | {1.0 / per:.2f} | "
                   f"{1e3 * per:.1f} |")
            if g4_s is not None:
                row += f" {1e3 * g4_s:.1f} | {g4_s / per:.2f}x |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
