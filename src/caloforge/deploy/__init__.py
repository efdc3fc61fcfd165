"""Deployment: ONNX / TorchScript export of a fixed-step sampler, a Triton model repository, a real
Triton server (``caloforge serve``) and its client (``generate_remote``).

See docs/deployment.md. ``tritonclient`` (client) is imported only where used.
"""

from caloforge.deploy.api import ExportResult, export_model
from caloforge.deploy.client import ShowerClient, batch_size_counts, generate_remote, iter_generate_remote
from caloforge.deploy.export import ExportCheck, ExportMismatchError, check_export, export_onnx, export_torchscript
from caloforge.deploy.graph import INPUT_NAMES, OUTPUT_NAMES, GraphSpec, SamplerGraph, make_noise, with_voxel_order
from caloforge.deploy.model_graph import DiffusionSamplerGraph, build_sampler_graph
from caloforge.deploy.server import TritonServer, free_port, serve
from caloforge.deploy.server_env import ServerEnv, ensure_server_env
from caloforge.deploy.triton_repo import TritonModelOptions, write_triton_model
from caloforge.deploy.voxel_order import VOXEL_ORDERS, voxel_permutation

__all__ = [
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "VOXEL_ORDERS",
    "DiffusionSamplerGraph",
    "ExportCheck",
    "ExportMismatchError",
    "ExportResult",
    "GraphSpec",
    "SamplerGraph",
    "ServerEnv",
    "ShowerClient",
    "TritonModelOptions",
    "TritonServer",
    "batch_size_counts",
    "build_sampler_graph",
    "check_export",
    "ensure_server_env",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "free_port",
    "generate_remote",
    "iter_generate_remote",
    "make_noise",
    "serve",
    "voxel_permutation",
    "with_voxel_order",
    "write_triton_model",
]
