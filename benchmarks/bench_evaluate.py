"""Run time of ``caloforge evaluate`` for N vs N ds2-shaped showers, per metric.

Usage: python benchmarks/bench_evaluate.py [--n 10000] [--workdir DIR] [--threads 1] [--plots summary]

The showers are *synthetic* (``caloforge.evaluate.synthetic_showers``: smooth profile + gamma
fluctuations, ds2 binning, 1 GeV - 1 TeV), the generated set 3 % wider than the reference so the
classifiers have something to find; the timings depend on the shapes and sample sizes, not on the
physics. Both samples go through HDF5 files (gzip) so reading is timed as well. Prints a table
(steps as in ``timings.json``) and the machine's load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from caloforge.evaluate import ClassifierConfig, EvaluateConfig, evaluate, synthetic_showers
from caloforge.geometry import get_geometry
from caloforge.io import write_showers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="showers per sample")
    parser.add_argument("--workdir", default=None, help="folder for the temporary files")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and BLAS (0 = all cores)")
    parser.add_argument("--plots", default="summary", choices=("none", "summary", "all"))
    parser.add_argument("--published", action="store_true", help="published classifier (3 x 2048): very slow on CPU")
    args = parser.parse_args()

    geo = get_geometry("ds2")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp_path = Path(tmp)
        start = time.perf_counter()
        ref = write_showers(tmp_path / "ref.h5", *synthetic_showers(args.n, geo, seed=1), {"geometry": "ds2"})
        gen = write_showers(tmp_path / "gen.h5", *synthetic_showers(args.n, geo, seed=2, width_scale=1.03),
                            {"geometry": "ds2"})
        print(f"built 2 x {args.n} synthetic ds2 showers in {time.perf_counter() - start:.0f} s")
        classifier = ClassifierConfig.published() if args.published else ClassifierConfig()
        config = EvaluateConfig(plots=args.plots, classifier=classifier, threads=args.threads)
        load_before = os.getloadavg()
        start = time.perf_counter()
        metrics = evaluate(gen, ref, geo, tmp_path / "eval", config=config, progress=False)
        total = time.perf_counter() - start
        load_after = os.getloadavg()
        timings = json.loads((tmp_path / "eval" / "timings.json").read_text())

    print(f"\nevaluate: {args.n} vs {args.n} ds2 showers, {os.cpu_count()} CPU cores, threads "
          f"{args.threads or 'all'}, classifier {classifier.hidden_layers} x {classifier.width}")
    print(f"load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
          f"after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f}\n")
    def fmt(key: str, text: str) -> str:
        return text if metrics.get(key) is not None else ""

    notes = {
        "load": "read + validate both files",
        "features": "high-level features of both samples",
        "hist": "histograms + separation powers",
        "cls-low": fmt("auc_low", f"epochs run {metrics.get('classifier_low', {}).get('epochs_run')}, "
                                  f"AUC {metrics['auc_low'] or 0:.3f}"),
        "cls-high": fmt("auc_high", f"epochs run {metrics.get('classifier_high', {}).get('epochs_run')}, "
                                    f"AUC {metrics['auc_high'] or 0:.3f}"),
        "fpd": fmt("fpd", f"FPD x1e3 {(metrics['fpd'] or 0) * 1e3:.1f} +- {(metrics['fpd_err'] or 0) * 1e3:.1f}"),
        "kpd": fmt("kpd", f"KPD x1e3 {(metrics['kpd'] or 0) * 1e3:.3f} +- {(metrics['kpd_err'] or 0) * 1e3:.3f}"),
        "plots": f"plots={args.plots}, PNG + PDF",
    }
    print("| step | seconds | note |")
    print("| --- | --- | --- |")
    for step, seconds in timings.items():
        print(f"| {step} | {seconds:.1f} | {notes.get(step, '')} |")
    features_alone = sum(timings.get(k, 0.0) for k in ("load", "features", "hist"))
    print(f"| **features alone** (load + features + hist) | **{features_alone:.1f}** | target < 30 s |")
    print(f"| **all metrics** (wall clock, incl. writing) | **{total:.1f}** | target < 600 s |")


if __name__ == "__main__":
    main()
