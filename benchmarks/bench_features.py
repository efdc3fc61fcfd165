"""Feature-extraction throughput (ds2, ds3 shapes) and peak memory of streaming a large ds3 file.

Usage: python benchmarks/bench_features.py [--n-stream 100000] [--workdir DIR]

Prints a table. The streaming measurement runs in a fresh subprocess so its peak RSS
(VmHWM) counts only reading + features of the file, not building it.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from caloforge.features import compute_features, features_from_file
from caloforge.geometry import get_geometry
from caloforge.io import ShowerWriter


def synthetic(n: int, n_voxels: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sparse exponential showers (30 % of voxels hit), energies 1-100 GeV in MeV."""
    energies = (1000.0 * 10 ** rng.uniform(0, 2, size=(n, 1))).astype(np.float32)
    showers = rng.exponential(5.0, size=(n, n_voxels)).astype(np.float32)
    showers *= rng.random((n, n_voxels), dtype=np.float32) < 0.3
    return energies, showers


def throughput(name: str, n: int, rng: np.random.Generator) -> float:
    geo = get_geometry(name)
    energies, showers = synthetic(n, geo.n_voxels, rng)
    compute_features(energies[:10], showers[:10], geo)  # warm caches
    start = time.perf_counter()
    compute_features(energies, showers, geo)
    return n / (time.perf_counter() - start)


def peak_rss_gib() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def stream_child(path: str) -> None:
    geo = get_geometry("ds3")
    start = time.perf_counter()
    feats = features_from_file(path, geo)
    elapsed = time.perf_counter() - start
    peak_gib = peak_rss_gib()
    print(f"{len(feats)} {elapsed:.2f} {peak_gib:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-stream", type=int, default=100_000, help="showers in the streamed ds3 file")
    parser.add_argument("--workdir", default=None, help="where to write the temporary ds3 file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stream_child(args.child)
        return
    rng = np.random.default_rng(0)
    rows = [("ds2", 10_000), ("ds3", 2_000)]
    print("| geometry | voxels | showers | features showers/s |")
    print("| --- | --- | --- | --- |")
    for name, n in rows:
        print(f"| {name} | {get_geometry(name).n_voxels} | {n} | {throughput(name, n, rng):,.0f} |", flush=True)

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = Path(tmp) / "ds3_big.h5"
        start = time.perf_counter()
        with ShowerWriter(path, get_geometry("ds3").n_voxels, {"geometry": "ds3"}, compression="gzip") as w:
            for lo in range(0, args.n_stream, 1000):
                w.append(*synthetic(min(1000, args.n_stream - lo), 40500, rng))
        build = time.perf_counter() - start
        out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True, check=True)
        n, elapsed, peak = out.stdout.split()
        size_gib = path.stat().st_size / 1024**3
        print()
        print("| streamed ds3 file | file size | write time | features time | showers/s | peak RSS |")
        print("| --- | --- | --- | --- | --- | --- |")
        print(f"| {int(n):,} showers | {size_gib:.2f} GiB (gzip) | {build:.0f} s | {float(elapsed):.0f} s | "
              f"{int(n) / float(elapsed):,.0f} | {float(peak):.2f} GiB |")


if __name__ == "__main__":
    main()
