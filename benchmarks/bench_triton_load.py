"""Load test of caloforge on a real Triton server: N concurrent clients, each asking single showers.

One server (127.0.0.1 only) serves the same exported sampler twice:
``batched`` (dynamic batching, max_batch_size = clients) and ``unbatched`` (max_batch_size 1, no
dynamic batching). For each, ``--clients`` threads (own connection each) send single-shower
requests until ``--requests`` in total are answered or ``--seconds`` pass; the table gives
throughput, p50/p99 latency and the batch sizes Triton formed (from the statistics endpoint),
next to direct in-process generation (PyTorch graph and ONNX Runtime, batch 1 and batch = clients).

    python benchmarks/bench_triton_load.py [--model default|CKPT | --config TRAIN.yaml] [--sampler NAME --steps K]
                                           [--clients 16] [--requests 200] [--seconds 40] [--protocol http|grpc]

``--config`` builds the architecture of a training config with untrained weights (preprocessing
fitted on synthetic showers): the speed is that of the trained model, the showers are not.

Timings on a shared machine are noisy: run it when the machine is quiet and compare within one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from caloforge.deploy import (
    ShowerClient,
    TritonModelOptions,
    TritonServer,
    batch_size_counts,
    ensure_server_env,
    free_port,
    make_noise,
    write_triton_model,
)
from caloforge.deploy.export import DEFAULT_TOLERANCE, ONNX_FILE, onnx_session
from caloforge.deploy.model_graph import build_sampler_graph
from caloforge.diffusion import ShowerDiffusionModel
from caloforge.generation import load_model
from caloforge.geometry import get_geometry
from caloforge.train.config import load_train_config


def untrained_model(config_path: str) -> ShowerDiffusionModel:
    """The architecture of a training config, random weights, preprocessing fitted on synthetic showers."""
    cfg = load_train_config(config_path)
    geometry = get_geometry(cfg.geometry)
    torch.manual_seed(0)
    model = ShowerDiffusionModel(geometry, cfg.model)
    rng = np.random.default_rng(0)
    energies = np.exp(rng.uniform(np.log(1e3), np.log(1e5), (256, 1))).astype(np.float32)
    profile = np.exp(-geometry.voxel_r / 2.0 - (geometry.voxel_layer - 12) ** 2 / 100.0)
    showers = energies * profile / profile.sum() * rng.exponential(1.0, (256, geometry.n_voxels))
    model.fit_preprocessing(torch.from_numpy(energies), torch.from_numpy(showers.astype(np.float32)))
    return model.eval()


def load(url: str, protocol: str, model: str, clients: int, total: int, seconds: float, energies: np.ndarray,
         noise: np.ndarray) -> dict:
    """Closed-loop load: ``clients`` threads, single-shower requests, bounded by count and time."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    issued = [0]
    deadline = time.monotonic() + seconds

    def worker() -> None:
        client = ShowerClient(url, protocol=protocol, model_name=model)
        while time.monotonic() < deadline:
            with lock:
                if issued[0] >= total:
                    break
                i = issued[0]
                issued[0] += 1
            j = i % len(energies)
            t0 = time.perf_counter()
            try:
                client.infer(energies[j:j + 1], noise[j:j + 1])
            except Exception as exc:  # counted and reported, the load goes on
                with lock:
                    errors.append(str(exc))
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)
        client.close()

    stats_client = ShowerClient(url, protocol=protocol, model_name=model)
    before = batch_size_counts(stats_client.statistics())
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    after = batch_size_counts(stats_client.statistics())
    formed = {b: after.get(b, 0) - before.get(b, 0) for b in after if after.get(b, 0) - before.get(b, 0) > 0}
    lat = np.array(latencies) * 1e3
    return {"n": len(latencies), "errors": len(errors), "elapsed": elapsed, "throughput": len(latencies) / elapsed,
            "p50": float(np.percentile(lat, 50)) if lat.size else float("nan"),
            "p99": float(np.percentile(lat, 99)) if lat.size else float("nan"), "batches": formed}


def direct(fn, energies: np.ndarray, noise: np.ndarray, batch: int, seconds: float) -> float:
    """Showers/s of ``fn(energies, noise)`` called in a loop at ``batch`` (bounded by ``seconds``)."""
    fn(energies[:batch], noise[:batch])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(energies[:batch], noise[:batch])
        done += batch
    return done / (time.perf_counter() - start)


def fmt_batches(batches: dict[int, int]) -> str:
    if not batches:
        return "-"
    total = sum(b * c for b, c in batches.items())
    mean = total / sum(batches.values())
    top = sorted(batches.items(), key=lambda kv: -kv[1])[:4]
    return f"mean {mean:.1f}; " + ", ".join(f"{b}x{c}" for b, c in sorted(top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="checkpoint or 'default'")
    parser.add_argument("--config", default=None, help="instead of --model: untrained model of this training config")
    parser.add_argument("--sampler", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200, help="requests per configuration (upper bound)")
    parser.add_argument("--seconds", type=float, default=40.0, help="time limit per configuration")
    parser.add_argument("--protocol", choices=["http", "grpc"], default="grpc")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime / torch threads, in-process and per server instance (default 1)")
    parser.add_argument("--max-queue-delay-us", type=int, default=30000,
                        help="how long Triton may hold a request to form a batch (default 30000: full batches)")
    parser.add_argument("--venv", default=None)
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="export check: max |ONNX - PyTorch| relative to the largest voxel")
    args = parser.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)

    model = untrained_model(args.config) if args.config else load_model(args.model)
    label = f"untrained {args.config}" if args.config else args.model
    graph = build_sampler_graph(model, sampler=args.sampler, steps=args.steps)
    spec = graph.spec
    rng = np.random.default_rng(0)
    lo, hi = spec.energy_range_mev
    energies = np.exp(rng.uniform(np.log(lo), np.log(hi), (256, 1))).astype(np.float32)
    noise = make_noise(spec.noise_parts, len(energies), seed=0)
    print(f"model {label}: geometry {spec.geometry.name} ({spec.n_voxels} voxels), sampler {spec.sampler}, "
          f"{spec.steps} steps; {args.clients} clients, <= {args.requests} requests / <= {args.seconds:.0f} s each, "
          f"{args.protocol}; {os.cpu_count()} CPU cores")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        configs = {
            "triton dynamic batching": TritonModelOptions("batched", max_batch_size=args.clients,
                                                          dynamic_batching=True, intra_op_threads=args.threads,
                                                          max_queue_delay_us=args.max_queue_delay_us),
            "triton unbatched": TritonModelOptions("unbatched", max_batch_size=1, dynamic_batching=False,
                                                   intra_op_threads=args.threads),
        }
        for options in configs.values():
            write_triton_model(graph, repo, options, tolerance=args.tolerance)
        onnx_path = repo / "batched" / "1" / ONNX_FILE

        session = onnx_session(onnx_path, args.threads)

        def run_ort(e: np.ndarray, z: np.ndarray) -> np.ndarray:
            return session.run(["showers"], {"incident_energy": e, "noise": z})[0]

        def run_torch(e: np.ndarray, z: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return graph(torch.from_numpy(e), torch.from_numpy(z)).numpy()

        budget = min(args.seconds, 20.0)
        for name, fn in (("in-process PyTorch", run_torch), ("in-process ONNX Runtime", run_ort)):
            for batch in (1, args.clients):
                rows.append((f"{name}, batch {batch}", direct(fn, energies, noise, batch, budget), None, None, "-"))
        del session

        env = ensure_server_env(args.venv)
        server = TritonServer(repo, http_port=free_port(), grpc_port=free_port(), env=env,
                              log_file=Path(tmp) / "server.log")
        with server:
            url = server.grpc_url if args.protocol == "grpc" else server.http_url
            results = {}
            for label, options in configs.items():
                ShowerClient(url, protocol=args.protocol, model_name=options.name).infer(energies[:1], noise[:1])
                r = load(url, args.protocol, options.name, args.clients, args.requests, args.seconds, energies, noise)
                results[label] = r
                note = f" ({r['errors']} errors)" if r["errors"] else ""
                rows.append((label + note, r["throughput"], r["p50"], r["p99"], fmt_batches(r["batches"])))

    print()
    print(f"| configuration | showers/s | p50 latency [ms] | p99 latency [ms] | batch sizes formed (size x count) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for label, thr, p50, p99, batches in rows:
        p50s = "-" if p50 is None else f"{p50:.1f}"
        p99s = "-" if p99 is None else f"{p99:.1f}"
        print(f"| {label} | {thr:.1f} | {p50s} | {p99s} | {batches} |")
    speedup = results["triton dynamic batching"]["throughput"] / results["triton unbatched"]["throughput"]
    print(f"\ndynamic batching / unbatched throughput: {speedup:.2f}x")


if __name__ == "__main__":
    main()
