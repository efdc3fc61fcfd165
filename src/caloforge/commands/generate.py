"""``caloforge generate``: sample showers from a trained model into a CaloChallenge file."""

from __future__ import annotations

import argparse

from caloforge.commands._common import add_overwrite, add_seed, positive_int

NAME = "generate"
HELP = "generate showers with a trained diffusion model (or the bundled one: --model default)"

# options that the served graph fixes: refused with --server rather than silently ignored
_LOCAL_ONLY = ("model", "sampler", "steps", "layer_steps", "layer_sampler", "precision", "compile", "threads",
               "num_shards", "shard_index")
_LOCAL_DEFAULTS = {"model": "default", "sampler": None, "steps": None, "layer_steps": None, "layer_sampler": None,
                   "precision": "fp32", "compile": False, "threads": None, "num_shards": 1, "shard_index": 0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from caloforge.diffusion.samplers import SAMPLERS

    parser.add_argument("--model", default=_LOCAL_DEFAULTS["model"],
                        help="model.pt from `caloforge train` or `caloforge distill`, 'default' (bundled one-step model, "
                             "= 'ds2-fast') or 'ds2-full' (bundled undistilled diffusion model)")
    parser.add_argument("--n", type=positive_int, default=None, help="number of showers")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--energy", help="incident energy in GeV: E (fixed) or EMIN:EMAX (log-uniform), e.g. 1:100")
    src.add_argument("--energies-from", help="take the incident energies of this CaloChallenge file")
    parser.add_argument("--sampler", default=_LOCAL_DEFAULTS["sampler"], choices=sorted(SAMPLERS),
                        help="sampler (default: the one recommended in the model file; "
                             "ddpm for models without one)")
    parser.add_argument("--steps", type=positive_int, default=_LOCAL_DEFAULTS["steps"],
                        help="noise levels of the sampler (default: the model's recommended number)")
    parser.add_argument("--batch-size", type=positive_int, default=100, help="showers per network call (default 100)")
    parser.add_argument("--layer-steps", type=positive_int, default=_LOCAL_DEFAULTS["layer_steps"],
                        help="steps of the layer-energy model (default: the model's recommended number)")
    parser.add_argument("--layer-sampler", default=_LOCAL_DEFAULTS["layer_sampler"], choices=sorted(SAMPLERS),
                        help="sampler of the layer-energy model (default: the model's recommended one)")
    parser.add_argument("--precision", default=_LOCAL_DEFAULTS["precision"], choices=("fp32", "bf16"),
                        help="network arithmetic: fp32 (default) or bf16 (faster on CPUs with AVX512-BF16)")
    parser.add_argument("--compile", action="store_true",
                        help="run the voxel network compiled by torch.compile: ~1.3x faster per shower after a "
                             "one-time compilation of 20-100 s; for jobs of >~10^5 showers (needs a C++ compiler)")
    parser.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--num-shards", type=positive_int, default=_LOCAL_DEFAULTS["num_shards"],
                        help="split the job into this many shards, whole batches each (batch systems; default 1)")
    parser.add_argument("--shard-index", type=int, default=_LOCAL_DEFAULTS["shard_index"],
                        help="which shard to generate, 0-based (e.g. $(Process) or $SLURM_ARRAY_TASK_ID; default 0)")
    remote = parser.add_argument_group("generation on a Triton server (`caloforge serve`; the served graph fixes "
                                       "model, sampler and steps)")
    remote.add_argument("--server", metavar="URL", default=None,
                        help="send the requests to this Triton server: http://HOST:PORT or grpc://HOST:PORT")
    remote.add_argument("--model-name", default="caloforge", help="served model name (default caloforge)")
    remote.add_argument("--concurrency", type=positive_int, default=4,
                        help="requests in flight, batched together by the server (default 4)")
    parser.add_argument("--out", required=True, help="output .h5 (options written as .yaml beside it)")
    add_seed(parser)
    add_overwrite(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.server is not None:
        return _run_remote(args)
    from caloforge.generation import generate_file

    result = generate_file(
        args.out, args.model, n=args.n, energy=args.energy, energies_from=args.energies_from, sampler=args.sampler,
        steps=args.steps, batch_size=args.batch_size, seed=args.seed, layer_steps=args.layer_steps,
        layer_sampler=args.layer_sampler, precision=args.precision, compile=args.compile,
        threads=args.threads, overwrite=args.overwrite, progress=not args.no_progress,
        num_shards=args.num_shards, shard_index=args.shard_index,
    )
    print(f"generated {result.n_showers} showers in {result.wall_s:.1f} s ({result.showers_per_s:.1f} showers/s) "
          f"-> {result.path} (config {result.config_path})")
    return 0


def _run_remote(args: argparse.Namespace) -> int:
    from caloforge.deploy.remote_file import generate_remote_file
    from caloforge.errors import CaloforgeError

    for name in _LOCAL_ONLY:
        if getattr(args, name) != _LOCAL_DEFAULTS[name]:
            flag = "--" + name.replace("_", "-")
            raise CaloforgeError(f"{flag} does not apply with --server: the served model fixes it "
                                 "(choose it at `caloforge export`)")
    result = generate_remote_file(
        args.out, args.server, n=args.n, energy=args.energy, energies_from=args.energies_from,
        batch_size=args.batch_size, seed=args.seed, model_name=args.model_name, concurrency=args.concurrency,
        overwrite=args.overwrite, progress=not args.no_progress,
    )
    print(f"generated {result.n_showers} showers on {args.server} in {result.wall_s:.1f} s "
          f"({result.showers_per_s:.1f} showers/s) -> {result.path} (config {result.config_path})")
    return 0
