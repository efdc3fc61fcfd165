"""FastSim throughput on the ds2 readout: showers per second at 1, 10, 100 GeV and 1-100 GeV.

Usage: python benchmarks/bench_fastsim.py [--n 4000] [--params P.yaml|gflash] [--workers 1 2]
                                          [--repeats 3] [--cpus 0,1]

Columns: in-memory generation (:meth:`FastSim.sample`) with 1 and 2 worker threads, and the full
``caloforge fastsim`` job (:func:`caloforge.fastsim.generate`: energies, generation and the
CaloChallenge HDF5 file, gzip or lzf) with 2 threads. Best of ``--repeats`` runs (the machine may be shared:
say so when quoting numbers). ``--cpus`` pins the process to those cores (Linux), e.g. to measure
"2 cores" on a larger machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from caloforge.fastsim import FastSim, FastSimConfig, generate, get_detector, resolve_params
from caloforge.fullsim.source import EnergySpec

SPECS = ("1", "10", "100", "1:100")


def _energies(spec: str, n: int) -> np.ndarray:
    return EnergySpec.parse(spec).energy_mev(np.random.default_rng(0).random(n))


def best_rate(fn, n: int, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="showers per measurement (default 4000)")
    parser.add_argument("--params", default=None, help="parameter YAML or 'gflash' (default: shipped ds2 set)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell, best kept (default 3)")
    parser.add_argument("--cpus", default=None, help="pin to these CPU ids, e.g. 0,1")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    det = get_detector("ds2")
    params = resolve_params(args.params, det, "e-")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"FastSim ds2 e-, {args.n} showers per cell, best of {args.repeats}; "
          f"{platform.processor() or platform.machine()}, {cores} usable cores, load average {os.getloadavg()[0]:.1f}")
    print(f"params: {params.provenance.get('data', params.provenance.get('source', '?'))}; "
          f"spots per shower at 10 GeV: {params.spots.n_per_gev * 10 ** params.spots.exponent:.0f}")
    header = (["energy [GeV]"] + [f"sample, {w} thr [1/s]" for w in args.workers]
              + [f"file job {c}, 2 thr [1/s]" for c in ("gzip", "lzf")])
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in SPECS:
            energies = _energies(spec, args.n)
            row = [spec]
            for workers in args.workers:
                sim = FastSim(det, params, n_workers=workers)
                sim.sample(energies[:50], seed=0)  # warm-up
                row.append(f"{best_rate(lambda: sim.sample(energies, seed=1), args.n, args.repeats):.0f}")
            out = Path(tmp) / "fs.h5"
            for compression in ("gzip", "lzf"):
                config = FastSimConfig(detector="ds2", energy=spec, n=args.n, seed=1, params=args.params, workers=2,
                                       compression=compression)
                rate = best_rate(lambda: generate(out, config, overwrite=True, progress=False), args.n, args.repeats)
                row.append(f"{rate:.0f}")
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
