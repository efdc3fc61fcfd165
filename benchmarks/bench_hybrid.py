"""Hybrid (FastSim + SDEdit refinement) vs fully generative vs FastSim alone on the Geant4 ds2 reference.

Usage (from the repo root; data paths default to the lead's runs/data, override with options):

    python benchmarks/bench_hybrid.py --n 2000 --steps 1 2 4 10 --t0 0.5
    python benchmarks/bench_hybrid.py --tune --n 200       # scan t0 on the validation file first

Generated samples use the incident energies of the first ``--n`` reference showers; the metrics
(``hist``, ``cls-high``, ``fpd``, plots off) compare them with the whole reference file.
Showers/s is wall time of FastSim + refinement (hybrid) or generation, on ``--threads`` CPU
threads: on a shared machine these figures are noisy.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from caloforge.evaluate import evaluate
from caloforge.fastsim import FastSim, get_detector, resolve_params
from caloforge.generation import generate_showers, load_model
from caloforge.hybrid import refine_showers, start_sigma
from caloforge.io import read_showers

METRICS = ["hist", "cls-high", "fpd"]


def _score(gen_e: np.ndarray, gen_s: np.ndarray, ref: str, seed: int) -> dict:
    m = evaluate((gen_e.reshape(-1, 1), gen_s), ref, "ds2", None, metrics=METRICS, plots="none", progress=False,
                 seed=seed)
    sp = m["separation_power"]
    e_ratio = next((v for k, v in sp.items() if "E_ratio" in k or "e_ratio" in k.lower()), None)
    return {"auc_high": m["auc_high"], "fpd": m["fpd"], "fpd_err": m["fpd_err"], "sep_E_ratio": e_ratio}


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", default="runs/data/ds2_e-_test.h5")
    p.add_argument("--validation", default="runs/data/ds2_e-_val.h5")
    p.add_argument("--model", default="default")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 10])
    p.add_argument("--sampler", default="dpmpp2m")
    p.add_argument("--layer-steps", type=int, default=8)
    p.add_argument("--t0", type=float, default=0.5)
    p.add_argument("--tune", action="store_true", help="pick t0 by FPD on the validation file (2 steps)")
    p.add_argument("--tune-values", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6, 0.7])
    p.add_argument("--tune-n", type=int, default=200, help="validation showers per t0 value")
    p.add_argument("--skip-generative", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    det = get_detector("ds2")
    sim = FastSim(det, resolve_params(None, det, "e-"), n_workers=args.threads)
    opts = dict(sampler=args.sampler, layer_steps=args.layer_steps, batch_size=100, seed=args.seed)

    t0 = args.t0
    if args.tune:
        ve, _ = read_showers(args.validation, max_showers=args.tune_n)
        vfs = sim.sample(ve[:, 0], seed=args.seed + 1)
        best = None
        for cand in args.tune_values:
            r = refine_showers(model, ve, vfs, sigma0=start_sigma(cand), steps=2, **opts)
            s = _score(ve[:, 0], r, args.validation, args.seed)
            print(f"tune t0={cand:.2f} sigma0={start_sigma(cand):.3f}: {s}", flush=True)
            if best is None or s["fpd"] < best[1]:
                best = (cand, s["fpd"])
        t0 = best[0]
        print(f"chosen t0 = {t0} (lowest FPD on validation)", flush=True)

    energies, _ = read_showers(args.reference, max_showers=args.n)
    e = energies[:, 0]
    rows = []
    fs, wall = _timed(lambda: sim.sample(e, seed=args.seed + 2))
    rows.append({"method": "FastSim", "steps": 0, "evals": 0, "showers_per_s": len(e) / wall,
                 **_score(e, fs, args.reference, args.seed)})
    print(rows[-1], flush=True)
    sigma0 = start_sigma(t0)
    for k in args.steps:
        r, wall_r = _timed(lambda: refine_showers(model, e, fs, sigma0=sigma0, steps=k, **opts))
        rows.append({"method": f"hybrid t0={t0}", "steps": k, "evals": k,
                     "showers_per_s": len(e) / (wall + wall_r), **_score(e, r, args.reference, args.seed)})
        print(rows[-1], flush=True)
        if not args.skip_generative:
            g, wall_g = _timed(lambda: generate_showers(model, e, steps=k, layer_sampler=args.sampler, **opts))
            rows.append({"method": "generative", "steps": k, "evals": k, "showers_per_s": len(e) / wall_g,
                         **_score(e, g, args.reference, args.seed)})
            print(rows[-1], flush=True)
    print(f"\n{len(e)} generated showers vs {args.reference}; sampler {args.sampler}, layer steps {args.layer_steps}, "
          f"{args.threads} threads\n")
    print("| method | steps | AUC high | FPD | sep. power E_ratio | showers/s |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['method']} | {row['steps']} | {row['auc_high']:.3f} | {row['fpd']:.4f} +- {row['fpd_err']:.4f} "
              f"| {row['sep_E_ratio']:.4f} | {row['showers_per_s']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"t0": t0, "n": len(e), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
