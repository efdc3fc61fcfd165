"""``caloforge export``: a checkpoint as a checked ONNX / TorchScript sampler graph or a Triton repository."""

from __future__ import annotations

import argparse

from caloforge.commands._common import add_overwrite, add_seed, positive_int
from caloforge.deploy.export import DEFAULT_TOLERANCE

NAME = "export"
HELP = "export a model as ONNX, TorchScript or a Triton model repository (fixed-step sampler, noise as input)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint file or 'default' (the bundled model)")
    parser.add_argument("--format", required=True, choices=["onnx", "torchscript", "triton"], dest="fmt")
    parser.add_argument("--out", required=True,
                        help="output folder (onnx/torchscript) or Triton model repository (triton)")
    parser.add_argument("--sampler", default=None,
                        help="deterministic sampler baked into the graph (default: the one the model file "
                             "recommends, e.g. consistency for a distilled model; else heun)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="sampler steps (default: the model's recommendation, else 16)")
    parser.add_argument("--layer-sampler", default=None,
                        help="sampler of the layer-energy model (default: the model's recommendation, else heun)")
    parser.add_argument("--layer-steps", type=positive_int, default=None,
                        help="its steps (default: the model's recommendation, else 32)")
    parser.add_argument("--voxel-order", choices=["calochallenge", "par04"], default="calochallenge",
                        help="output voxel order: CaloChallenge (r fastest) or Geant4 Par04 (layer = z fastest)")
    parser.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="max |exported - PyTorch| allowed, relative to the largest voxel energy "
                             f"(default {DEFAULT_TOLERANCE:g})")
    triton = parser.add_argument_group("Triton (--format triton)")
    triton.add_argument("--model-name", default="caloforge", help="model name in the repository (default caloforge)")
    triton.add_argument("--max-batch-size", type=positive_int, default=128, help="largest batch (default 128)")
    triton.add_argument("--no-dynamic-batching", action="store_true", help="serve each request on its own")
    triton.add_argument("--max-queue-delay-us", type=int, default=1000,
                        help="how long Triton may hold a request to form a batch (default 1000 us)")
    triton.add_argument("--instances", type=positive_int, default=1, help="model instances (default 1)")
    triton.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads per instance (0 = per core)")
    add_seed(parser)
    add_overwrite(parser)


def run(args: argparse.Namespace) -> int:
    from caloforge.deploy.api import export_model
    from caloforge.deploy.triton_repo import TritonModelOptions

    triton = None
    if args.fmt == "triton":
        triton = TritonModelOptions(args.model_name, args.max_batch_size, not args.no_dynamic_batching,
                                    args.max_queue_delay_us, args.instances, args.threads)
    result = export_model(args.model, args.fmt, args.out, sampler=args.sampler, steps=args.steps,
                          layer_sampler=args.layer_sampler, layer_steps=args.layer_steps,
                          voxel_order=args.voxel_order, opset=args.opset, tolerance=args.tolerance, seed=args.seed,
                          triton=triton, overwrite=args.overwrite)
    check = result.metadata["check"]
    spec = result.metadata
    print(f"wrote {result.path} ({args.fmt}; {spec['sampler']}, {spec['steps']} steps, {spec['voxel_order']} order)\n"
          f"check against PyTorch ({check['runtime']}, {check['n_showers']} showers): "
          f"max |diff| = {check['max_abs_diff_mev']:.3g} MeV (largest voxel {check['max_abs_reference_mev']:.3g} MeV)")
    return 0
