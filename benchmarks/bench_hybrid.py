"""Hybrid (FastSim + refinement) vs fully generative vs FastSim alone on the Geant4 ds2 reference.

Refiners: the cold-diffusion bridge (``--refiner``, from ``caloforge train-refiner``) and SDEdit
with the diffusion model (``--model``); fully generative: the diffusion model with ``--sampler``
at the same step counts and, with ``--student``, a consistency-distilled model at 1, 2 and 4 steps.

Usage (from the repo root; data paths default to the lead's runs/data, override with options):

    python benchmarks/bench_hybrid.py --n 2000 --steps 1 2 4 10 --t0 0.5 --refiner REFINER.pt --student STUDENT.pt
    python benchmarks/bench_hybrid.py --tune --n 200       # scan t0 on the validation file first

Generated samples use the incident energies of the first ``--n`` reference showers; the metrics
(``hist``, ``cls-low``, ``cls-high``, ``fpd``, plots off) compare them with the whole reference file.
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
from caloforge.hybrid import load_bridge_file, refine_showers, start_sigma
from caloforge.io import read_showers

METRICS = ["hist", "cls-low", "cls-high", "fpd"]


def _score(gen_e: np.ndarray, gen_s: np.ndarray, ref: str, seed: int) -> dict:
    m = evaluate((gen_e.reshape(-1, 1), gen_s), ref, "ds2", None, metrics=METRICS, plots="none", progress=False,
                 seed=seed)
    sp = m["separation_power"]
    e_ratio = next((v for k, v in sp.items() if "E_ratio" in k or "e_ratio" in k.lower()), None)
    return {"auc_low": m["auc_low"], "auc_high": m["auc_high"], "auc_high_std": m["classifier_high"]["auc_std"],
            "fpd": m["fpd"], "fpd_err": m["fpd_err"], "sep_E_ratio": e_ratio}


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", default="runs/data/ds2_e-_test.h5")
    p.add_argument("--validation", default="runs/data/ds2_e-_val.h5")
    p.add_argument("--model", default="ds2-full", help="diffusion model: SDEdit and generative rows")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 10])
    p.add_argument("--sampler", default="dpmpp2m")
    p.add_argument("--layer-steps", type=int, default=8)
    p.add_argument("--t0", type=float, default=0.5)
    p.add_argument("--tune", action="store_true", help="pick t0 by FPD on the validation file (2 steps)")
    p.add_argument("--tune-values", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6, 0.7])
    p.add_argument("--tune-n", type=int, default=200, help="validation showers per t0 value")
    p.add_argument("--skip-generative", action="store_true")
    p.add_argument("--skip-sdedit", action="store_true")
    p.add_argument("--sdedit-steps", type=int, nargs="+", default=None, help="SDEdit rows only at these steps")
    p.add_argument("--generative-steps", type=int, nargs="+", default=None,
                   help="rows of --model's own sampler only at these steps")
    p.add_argument("--refiner", default=None, help="cold-diffusion refiner (caloforge train-refiner model.pt)")
    p.add_argument("--student", default=None, help="consistency-distilled model: generative rows at 1, 2, 4 steps")
    p.add_argument("--student-layer", default="dpmpp2m-s20:10", help="layer sampler:steps of the student rows")
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
    bridge = load_bridge_file(args.refiner)[0] if args.refiner else None
    student = load_model(args.student) if args.student else None
    l_sampler, l_steps = args.student_layer.split(":")

    def add(method: str, k: int, showers: np.ndarray, seconds: float) -> None:
        rows.append({"method": method, "steps": k, "evals": k, "showers_per_s": len(e) / seconds,
                     **_score(e, showers, args.reference, args.seed)})
        print(rows[-1], flush=True)

    for k in args.steps:
        if bridge is not None:
            r, wall_r = _timed(lambda: refine_showers(bridge, e, fs, sigma0=sigma0, steps=k, **opts))
            add("hybrid: FastSim + cold-diffusion bridge", k, r, wall + wall_r)
        if not args.skip_sdedit and (args.sdedit_steps is None or k in args.sdedit_steps):
            r, wall_r = _timed(lambda: refine_showers(model, e, fs, sigma0=sigma0, steps=k, **opts))
            add(f"hybrid: FastSim + SDEdit t0={t0}", k, r, wall + wall_r)
        if not args.skip_generative and (args.generative_steps is None or k in args.generative_steps):
            g, wall_g = _timed(lambda: generate_showers(model, e, steps=k, layer_sampler=args.sampler, **opts))
            add(f"generative: {args.sampler}", k, g, wall_g)
        if student is not None and k in (1, 2, 4):
            g, wall_g = _timed(lambda: generate_showers(student, e, sampler="consistency", steps=k,
                                                        layer_sampler=l_sampler, layer_steps=int(l_steps),
                                                        batch_size=100, seed=args.seed))
            add("generative: distilled (consistency)", k, g, wall_g)
    print(f"\n{len(e)} generated showers vs {args.reference}; t0 {t0} (layer refinement, SDEdit), sampler "
          f"{args.sampler}, layer steps {args.layer_steps}, {args.threads} threads\n")
    print("| method | voxel network evaluations | AUC high | AUC low | FPD x1e3 | sep. power E_ratio | showers/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['method']} | {row['steps']} | {row['auc_high']:.3f} +- {row['auc_high_std']:.3f} | "
              f"{row['auc_low']:.3f} | {1e3 * row['fpd']:.0f} +- {1e3 * row['fpd_err']:.0f} | "
              f"{row['sep_E_ratio']:.4f} | {row['showers_per_s']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"t0": t0, "n": len(e), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
