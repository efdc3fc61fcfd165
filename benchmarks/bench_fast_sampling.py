"""Fast sampling (issue 5): cost of one network evaluation, solver accuracy versus steps, and
end-to-end generation speed next to Geant4. Prints markdown tables.

    # 1. one voxel-network evaluation at batch 100: variants (inference_mode, channels_last, bf16,
    #    TorchScript freeze, torch.compile, ONNX Runtime), CPU time and deviation from fp32
    python benchmarks/bench_fast_sampling.py network --model default [--compile]
    # 2. steps versus ODE accuracy: each sampler's end point vs a fine Heun reference from the same
    #    noise (standardised voxel space), on conditions of a CaloChallenge file; optional
    #    Karras schedule parameters per run: SAMPLER:STEPS[:RHO[:SIGMA_MAX]]
    python benchmarks/bench_fast_sampling.py steps --model default --data ds2_e-_val.h5 \
        --runs heun:8,dpmpp2m:10,dpmpp2m:10:5:40
    # 3. generation speed at batch 100 (wall best-of and CPU time per shower) and the speed-up
    #    over Geant4 on the energies of a `caloforge simulate` file
    #    (or --geant4-live N: simulate N showers with Geant4 in the same run and use their energies)
    python benchmarks/bench_fast_sampling.py speed --model default --geant4 ds2_e-_test.h5 \
        --runs heun:16:heun:32,consistency:1:dpmpp2m:8@student.pt
    # 4. the issue's table from `caloforge evaluate` folders and `speed` output
    python benchmarks/bench_fast_sampling.py table --rows "full=eval_dir,..." --speed speed.json

CPU time per shower is reported next to wall time because the development machine is shared
(2 cores, load 5-12): wall-clock numbers there are several times slower than on an idle
machine and vary from run to run, CPU time much less. Take both as noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from caloforge.diffusion import SAMPLERS, karras_sigmas, network_evaluations, sample
from caloforge.diffusion.schedules import SIGMA_MAX, SIGMA_MIN
from caloforge.generation import generate_showers, load_model
from caloforge.generation.compiled import compiled_voxel_network
from caloforge.io import ENERGY_KEY, read_extra, read_showers

BATCH = 100


def _time(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """(best wall s, median CPU s) of ``fn`` over ``reps`` runs after one warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), float(np.median(cpus))


# ---------------------------------------------------------------------------------------------- network
def _inputs(model, n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, model.geometry.n_voxels, generator=gen)
    return x, torch.full((n,), 0.5), torch.randn(n, model.voxel_cond_dim, generator=gen)


def _ort_session(denoiser, inputs, threads: int):
    import onnxruntime as ort

    path = Path(tempfile.mkdtemp()) / "denoiser.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(denoiser, tuple(t[:2] for t in inputs), str(path), dynamo=False,
                          input_names=["x", "sigma", "cond"], output_names=["denoised"],
                          dynamic_axes={k: {0: "N"} for k in ("x", "sigma", "cond", "denoised")}, opset_version=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {"x": inputs[0].numpy(), "sigma": inputs[1].numpy(), "cond": inputs[2].numpy()}
    return lambda: torch.from_numpy(session.run(None, feeds)[0])


def bench_network(args: argparse.Namespace) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    model = loaded.model.eval()
    den = model.voxel_denoiser
    inputs = _inputs(model, BATCH)
    with torch.inference_mode():
        reference = den(*inputs)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        den(*inputs)
    gflop = counter.get_total_flops() / BATCH / 1e9
    n_par = sum(p.numel() for p in den.parameters())
    print(f"model {loaded.source}: voxel network {n_par / 1e3:.0f} k parameters, {gflop:.3f} GFLOP per shower "
          f"per evaluation; batch {BATCH}, {args.threads} thread(s), torch {torch.__version__}")

    def with_mode(fn, *, autocast: bool = False):
        def run():
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
            with torch.inference_mode(), ctx:
                return fn(*inputs)
        return run

    def plain_no_grad():
        with torch.no_grad():
            return den(*inputs)

    variants: list[tuple[str, Callable[[], torch.Tensor]]] = [
        ("fp32, torch.no_grad (baseline)", plain_no_grad),
        ("fp32, torch.inference_mode", with_mode(den)),
        ("fp32, channels_last weights", with_mode(copy.deepcopy(den).to(memory_format=torch.channels_last))),
        ("bf16 autocast", with_mode(den, autocast=True)),
    ]
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(den, inputs, check_trace=False)))
    variants.append(("TorchScript trace + freeze", with_mode(frozen)))
    variants.append(("ONNX Runtime fp32", _ort_session(den, inputs, args.threads)))
    if args.compile:
        compiled = torch.compile(den)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(*inputs)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            compiled(*inputs)
        print(f"(torch.compile: {time.perf_counter() - start:.0f} s to compile both precisions)")
        variants.append(("torch.compile (inductor) fp32", with_mode(compiled)))
        variants.append(("torch.compile (inductor) + bf16", with_mode(compiled, autocast=True)))
    print("| variant | CPU ms/shower | wall ms/shower (best) | max abs diff | rel. RMS diff |")
    print("|---|---:|---:|---:|---:|")
    base_cpu = None
    for name, fn in variants:
        wall, cpu = _time(fn, args.repeats)
        out = fn().float()
        base_cpu = base_cpu or cpu
        diff = (out - reference).abs().max().item()
        rel = ((out - reference).square().mean().sqrt() / reference.square().mean().sqrt()).item()
        print(f"| {name} | {1e3 * cpu / BATCH:.2f} ({base_cpu / cpu:.2f}x) | {1e3 * wall / BATCH:.2f} | {diff:.1e} | "
              f"{rel:.1e} |", flush=True)
    if args.profile:
        with torch.autograd.profiler.profile() as prof, torch.inference_mode():
            for _ in range(3):
                den(*inputs)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


# ---------------------------------------------------------------------------------------------- steps
def bench_steps(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    model = loaded.model.eval()
    energies, showers = read_showers(args.data, max_showers=args.n)
    with torch.no_grad():
        batch = model.encode(torch.from_numpy(energies), torch.from_numpy(showers))
    cond = model.voxel_condition(batch.energy_cond, batch.layers)  # real layer vectors: isolates the voxel ODE
    shape = batch.voxels.shape

    def run(name: str, steps: int, rho: float = 7.0, sigma_max: float = SIGMA_MAX) -> torch.Tensor:
        gen = torch.Generator().manual_seed(args.seed)
        if rho == 7.0 and sigma_max == SIGMA_MAX:
            return sample(name, model.voxel_denoiser, shape, cond, steps, generator=gen)
        # same start noise as sample() draws, then the sampler on a Karras schedule with this rho / sigma_max
        x = torch.randn(shape, generator=gen) * sigma_max
        return SAMPLERS[name].fn(model.voxel_denoiser, x, karras_sigmas(steps, SIGMA_MIN, sigma_max, rho), cond, gen)

    start = time.perf_counter()
    reference = run("heun", args.reference_steps)
    print(f"model {loaded.source}; {shape[0]} showers of {args.data}; reference: Heun {args.reference_steps} levels "
          f"({network_evaluations('heun', args.reference_steps)} evaluations, {time.perf_counter() - start:.0f} s); "
          f"RMS of the reference {reference.square().mean().sqrt():.3f}")
    print("| sampler | steps | rho | sigma_max | network evaluations | RMS error vs reference (standardised logit units) |")
    print("|---|---:|---:|---:|---:|---:|")
    for item in args.runs.split(","):
        parts = item.split(":")
        name, steps = parts[0], int(parts[1])
        rho = float(parts[2]) if len(parts) > 2 else 7.0
        sigma_max = float(parts[3]) if len(parts) > 3 else SIGMA_MAX
        x = run(name, steps, rho, sigma_max)
        err = (x - reference).square().mean().sqrt().item()
        print(f"| {name} | {steps} | {rho:g} | {sigma_max:g} | {network_evaluations(name, steps)} | {err:.4f} |",
              flush=True)


# ---------------------------------------------------------------------------------------------- speed
def bench_speed(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if args.geant4_live:  # Geant4 timed now, on this machine, and its energies reused below
        from caloforge.fullsim import simulate_showers

        g4_energies, _, cpu_s = simulate_showers("ds2", "e-", args.geant4_energy, args.geant4_live, seed=99,
                                                 workers=1, progress=True)
        source = f"caloforge simulate ds2 e- {args.geant4_energy} GeV, {args.geant4_live} showers, this run"
    else:
        g4_energies, cpu_s = read_extra(args.geant4, ENERGY_KEY), read_extra(args.geant4, "cpu_time_s")
        source = args.geant4
    g4_median, g4_mean = float(np.median(cpu_s)), float(np.mean(cpu_s))
    energies = np.resize(np.asarray(g4_energies, dtype=np.float32).reshape(-1), args.n)
    print(f"Geant4 ({source}): median {1e3 * g4_median:.1f}, mean {1e3 * g4_mean:.1f} CPU ms/shower; "
          f"generation: {args.n} showers of those energies, batch {BATCH}, {args.threads} thread(s), best of "
          f"{args.repeats} (wall) / median (CPU)")
    print("| model | sampler | steps | layer sampler | precision | NFE (voxel) | showers/s (wall) | wall ms/shower | "
          "CPU ms/shower | speed-up vs Geant4 median (wall) | (CPU) | vs Geant4 mean (CPU) |")
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    models: dict[str, object] = {}
    for item in args.runs.split(","):
        spec, _, path = item.partition("@")
        parts = spec.split(":")
        name, steps, lname, lsteps = parts[0], int(parts[1]), parts[2], int(parts[3])
        precision = "bf16" if "bf16" in parts[4:] else "fp32"
        compiled = "compile" in parts[4:]
        path = path or args.model
        loaded = models.setdefault(path, load_model(path))
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext

        def run():
            with ctx():
                generate_showers(loaded, energies, sampler=name, steps=steps, layer_sampler=lname, layer_steps=lsteps,
                                 batch_size=BATCH, seed=args.seed)

        with compiled_voxel_network(loaded.model, compiled):
            if compiled:  # the one-time compilation (all batch shapes of the job), reported, not timed below
                start = time.perf_counter()
                run()
                compile_s = time.perf_counter() - start
            wall, cpu = _time(run, args.repeats)
        if compiled:
            precision += f"+compile ({compile_s:.0f} s once)"
        per_wall, per_cpu = wall / args.n, cpu / args.n
        row = {"model": path, "sampler": name, "steps": steps, "layer_sampler": f"{lname}:{lsteps}",
               "precision": precision, "nfe": network_evaluations(name, steps), "showers_per_s": 1 / per_wall,
               "wall_ms": 1e3 * per_wall, "cpu_ms": 1e3 * per_cpu, "speedup_wall": g4_median / per_wall,
               "speedup_cpu": g4_median / per_cpu, "speedup_cpu_mean": g4_mean / per_cpu}
        results.append(row)
        print(f"| {Path(path).name} | {name} | {steps} | {lname}:{lsteps} | {precision} | {row['nfe']} | "
              f"{row['showers_per_s']:.1f} | {row['wall_ms']:.2f} | {row['cpu_ms']:.2f} | {row['speedup_wall']:.1f}x | "
              f"{row['speedup_cpu']:.1f}x | {row['speedup_cpu_mean']:.1f}x |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"geant4_median_s": g4_median, "geant4_mean_s": g4_mean,
                                               "threads": args.threads, "rows": results}, indent=1))


# ---------------------------------------------------------------------------------------------- table
def _sep(metrics: dict, feature: str) -> float | None:
    return (metrics.get("separation_power") or {}).get(feature)


def bench_table(args: argparse.Namespace) -> None:
    speed = json.loads(Path(args.speed).read_text()) if args.speed else {"rows": []}
    print("| row | AUC high | AUC low | FPD x1e3 | sep. power E_ratio | showers/s (wall) | CPU ms/shower | "
          "speed-up vs Geant4 median (wall / CPU) | vs mean (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [r.split("=") for r in args.rows.split(",")]
    for i, (label, folder) in enumerate(rows):
        m = json.loads((Path(folder) / "metrics.json").read_text())
        sep = _sep(m, args.e_ratio_feature)
        s = speed["rows"][i] if i < len(speed["rows"]) else None
        fmt = (lambda v, k=1.0, d=3: "-" if v is None else f"{v * k:.{d}f}")
        cols = [fmt(m.get("auc_high")), fmt(m.get("auc_low")), fmt(m.get("fpd"), 1e3, 1), fmt(sep, 1.0, 4)]
        cols += ["-"] * 4 if s is None else [f"{s['showers_per_s']:.0f}", f"{s['cpu_ms']:.2f}",
                                             f"{s['speedup_wall']:.3g}x / {s['speedup_cpu']:.3g}x",
                                             f"{s['speedup_cpu_mean']:.3g}x"]
        print(f"| {label} | " + " | ".join(cols) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("network", help="cost of one voxel-network evaluation, variants")
    p.add_argument("--model", default="default")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--compile", action="store_true", help="include torch.compile (takes minutes)")
    p.add_argument("--profile", action="store_true", help="print the operator profile of one evaluation")
    p = sub.add_parser("steps", help="sampler accuracy versus steps against a fine Heun reference")
    p.add_argument("--model", default="ds2-full", help="an undistilled diffusion model")
    p.add_argument("--data", required=True, help="CaloChallenge file giving the conditions (not the test set)")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--reference-steps", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default="ddim:10,ddim:20,heun:5,heun:8,heun:10,heun:16,dpmpp2m:5,dpmpp2m:8,"
                                     "dpmpp2m:10,dpmpp2m:16,dpmpp2m:20,dpmpp2m:32",
                   help="SAMPLER:STEPS[:RHO[:SIGMA_MAX]],... (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("speed", help="generation speed and speed-up over Geant4")
    p.add_argument("--model", default="default")
    g4 = p.add_mutually_exclusive_group(required=True)
    g4.add_argument("--geant4", help="file from `caloforge simulate` (its cpu_time_s and energies)")
    g4.add_argument("--geant4-live", type=int, metavar="N",
                    help="instead: simulate N ds2 electrons with Geant4 in this run (1 worker) and time them")
    p.add_argument("--geant4-energy", default="1:100", help="energies of --geant4-live, GeV (default 1:100)")
    p.add_argument("--runs", default="heun:16:heun:32", help="SAMPLER:STEPS:LAYER_SAMPLER:LAYER_STEPS[:bf16][:compile][@MODEL],...")
    p.add_argument("--n", type=int, default=500, help="showers per timed run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the rows as JSON (for `table`)")
    p = sub.add_parser("table", help="the issue's table from evaluate folders + speed JSON")
    p.add_argument("--rows", required=True, help="LABEL=EVALUATE_DIR,... in the order of the speed rows")
    p.add_argument("--speed", default=None)
    p.add_argument("--e-ratio-feature", default="E_ratio")
    args = parser.parse_args()
    {"network": bench_network, "steps": bench_steps, "speed": bench_speed, "table": bench_table}[args.what](args)


if __name__ == "__main__":
    main()
