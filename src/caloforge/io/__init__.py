"""CaloChallenge HDF5 input/output with validation and atomic writes."""

from caloforge.io.atomic import atomic_path, atomic_write_text, check_output_path
from caloforge.io.merge import merge_shards
from caloforge.io.showers import (
    ENERGY_KEY,
    SHOWER_KEY,
    ShowerFileInfo,
    ShowerWriter,
    file_info,
    find_problems,
    iter_showers,
    read_extra,
    read_showers,
    validate_file,
    write_showers,
)

__all__ = [
    "ENERGY_KEY",
    "SHOWER_KEY",
    "ShowerFileInfo",
    "ShowerWriter",
    "atomic_path",
    "atomic_write_text",
    "check_output_path",
    "file_info",
    "find_problems",
    "iter_showers",
    "merge_shards",
    "read_extra",
    "read_showers",
    "validate_file",
    "write_showers",
]
