"""Geant4 full-simulation speed: seconds per shower in ds2 and the speed-up from 2 workers.

Usage: python benchmarks/bench_fullsim.py [--n 20] [--n-scaling 60] [--particle e-] [--detector ds2]

Prints a markdown table:

* per energy (1, 10, 100 GeV), one worker: the median and 16-84 % range of Geant4's CPU seconds per
  shower (``cpu_time_s`` as stored in files: event processing plus reading the scorer once) over
  ``--n`` showers, and the wall-clock seconds per shower of the whole call (worker start and
  physics-table building included, so it is higher for small ``--n``);
* at 10 GeV, ``--n-scaling`` showers with 1 and with 2 workers: wall time and the speed-up.

Timings on a shared machine are noisy: run it on an idle one for numbers to quote.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from caloforge.fullsim import simulate_showers


def timed(detector: str, particle: str, energy: str, n: int, workers: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    _, _, cpu_s = simulate_showers(detector, particle, energy, n, seed=12345, workers=workers)
    return time.perf_counter() - start, cpu_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="showers per energy (median over them)")
    parser.add_argument("--n-scaling", type=int, default=60, help="showers for the 1 vs 2 worker comparison")
    parser.add_argument("--particle", default="e-")
    parser.add_argument("--detector", default="ds2")
    args = parser.parse_args()

    print(f"# Geant4 full simulation, {args.detector}, {args.particle}, one core per worker "
          f"({os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f} at start)\n")
    print("| E [GeV] | showers | CPU s/shower median | CPU s/shower 16-84 % | wall s/shower (incl. start-up) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for energy in ("1", "10", "100"):
        wall, cpu_s = timed(args.detector, args.particle, energy, args.n, 1)
        lo, hi = np.percentile(cpu_s, [16, 84])
        print(f"| {energy} | {args.n} | {np.median(cpu_s):.4f} | {lo:.4f} - {hi:.4f} | {wall / args.n:.4f} |",
              flush=True)

    print(f"\n| workers | showers (10 GeV) | wall [s] | showers/s | speed-up |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    base = None
    for workers in (1, 2):
        wall, _ = timed(args.detector, args.particle, "10", args.n_scaling, workers)
        base = base or wall
        print(f"| {workers} | {args.n_scaling} | {wall:.2f} | {args.n_scaling / wall:.2f} | {base / wall:.2f} |",
              flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
