"""Triton Python-backend model serving an exported caloforge sampler graph with ONNX Runtime.

This file is copied into a Triton model repository as ``<model>/1/model.py`` by
:func:`caloforge.deploy.triton_repo.write_triton_model` and runs inside the *server* environment
(Triton's Python backend stub, numpy<2, onnxruntime); it must not import caloforge.

Each request carries ``incident_energy (n, 1) float32 MeV`` and ``noise (n, D) float32``
and gets ``showers (n, V) float32 MeV``. With dynamic batching Triton hands several requests to one
``execute`` call: invalid requests (non-finite or non-positive energy, non-finite noise, mismatched
row counts) get an error response of their own, the valid ones run together in one ONNX Runtime call.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

ENERGY, NOISE, SHOWERS = "incident_energy", "noise", "showers"


class TritonPythonModel:
    """Triton's Python-backend entry points: ``initialize``, ``execute``, ``finalize``."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.name = config["name"]
        folder = os.path.join(args["model_repository"], args["model_version"])
        with open(os.path.join(folder, "metadata.json")) as f:
            self.metadata = json.load(f)
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "0"))
        options.inter_op_num_threads = 1
        options.enable_mem_reuse = False  # its planner is quadratic in the nodes of the unrolled sampler graph
        options.add_session_config_entry("session.intra_op.allow_spinning", params.get("allow_spinning", "0"))
        self.session = ort.InferenceSession(os.path.join(folder, self.metadata["file"]), options,
                                           providers=["CPUExecutionProvider"])
        self.noise_size = int(self.metadata["inputs"][1]["shape"][1])

    def _check(self, energies, noise):
        """Error message for an invalid request, or None."""
        n = energies.shape[0]
        if energies.ndim != 2 or energies.shape[1] != 1:
            return f"input '{ENERGY}' must have shape (n, 1), got {list(energies.shape)}"
        if noise.shape != (n, self.noise_size):
            return f"input '{NOISE}' must have shape {[n, self.noise_size]}, got {list(noise.shape)}"
        bad = np.flatnonzero(~(np.isfinite(energies[:, 0]) & (energies[:, 0] > 0)))
        if bad.size:
            return (f"input '{ENERGY}' must be finite and > 0 MeV; row {int(bad[0])} is {float(energies[bad[0], 0])!r}"
                    f" ({bad.size} invalid row(s))")
        if not np.all(np.isfinite(noise)):
            return f"input '{NOISE}' holds NaN or infinite values"
        return None

    def execute(self, requests):
        responses = [None] * len(requests)
        good, energies, noises = [], [], []
        for i, request in enumerate(requests):
            e = pb_utils.get_input_tensor_by_name(request, ENERGY).as_numpy().astype(np.float32, copy=False)
            z = pb_utils.get_input_tensor_by_name(request, NOISE).as_numpy().astype(np.float32, copy=False)
            problem = self._check(e, z)
            if problem:
                responses[i] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"{self.name}: {problem}", pb_utils.TritonError.INVALID_ARG))
            else:
                good.append(i)
                energies.append(e)
                noises.append(z)
        if good:
            try:
                feeds = {ENERGY: np.concatenate(energies), NOISE: np.concatenate(noises)}
                (showers,) = self.session.run([SHOWERS], feeds)
            except Exception as exc:  # keep serving: report the failure on each affected request
                for i in good:
                    responses[i] = pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"{self.name}: inference failed: {exc}"))
                return responses
            start = 0
            for i, e in zip(good, energies):
                part = showers[start:start + e.shape[0]]
                start += e.shape[0]
                responses[i] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(SHOWERS, part)])
        return responses

    def finalize(self):
        self.session = None
