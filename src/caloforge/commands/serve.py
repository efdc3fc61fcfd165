"""``caloforge serve --repository REPO``: a real Triton server on 127.0.0.1 until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse

from caloforge.commands._common import positive_int

NAME = "serve"
HELP = "serve a Triton model repository (from `caloforge export --format triton`) on loopback"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repository", required=True, help="Triton model repository folder")
    parser.add_argument("--http-port", type=positive_int, default=8000, help="HTTP (KServe v2) port (default 8000)")
    parser.add_argument("--grpc-port", type=positive_int, default=8001, help="gRPC (KServe v2) port (default 8001)")
    parser.add_argument("--venv", default=None,
                        help="server virtual environment, created on first use from the pinned "
                             "server-requirements.txt (default $CALOFORGE_TRITON_VENV or ~/.cache/caloforge/triton-*)")
    parser.add_argument("--python", default=None,
                        help="interpreter to create the server venv with (needs a shared libpython; default: this one)")
    parser.add_argument("--log-file", default=None, help="write the server's log here instead of the terminal")


def run(args: argparse.Namespace) -> int:
    from caloforge.deploy.server import serve

    return serve(args.repository, http_port=args.http_port, grpc_port=args.grpc_port, venv=args.venv,
                 python=args.python, log_file=args.log_file)
