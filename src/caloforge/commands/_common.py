"""Argument helpers shared by several sub-commands."""

from __future__ import annotations

import argparse


def add_seed(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument("--seed", type=int, default=default, help=f"random seed (default {default})")


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace existing output")


def add_geometry(parser: argparse.ArgumentParser, required: bool = False, default: str | None = None) -> None:
    parser.add_argument(
        "--geometry", required=required, default=default,
        help="readout geometry: ds1-photons, ds1-pions, ds2, ds3 or a binning .xml file",
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value
