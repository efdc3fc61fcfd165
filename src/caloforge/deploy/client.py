"""Client for caloforge models on a Triton server (KServe v2 protocol over HTTP or gRPC, ``tritonclient``).

``url`` forms: ``http://HOST:PORT``, ``grpc://HOST:PORT`` or ``HOST:PORT`` (protocol from the
``protocol`` argument, default HTTP). Besides inference, the model config, model metadata and
inference statistics requests that CMS's SONIC client makes are exposed as plain dicts.

Noise is made on the client, per request, from ``(seed, index of its first shower)``
(:func:`caloforge.deploy.graph.make_noise`), exactly as in-process generation
(:func:`caloforge.generation.generate_showers`) draws it per batch: with the same seed and batch
size, remote and local generation give the same showers (up to float rounding), whatever the
concurrency, protocol or the batches Triton forms on the server.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from caloforge.deploy.graph import INPUT_NAMES, OUTPUT_NAMES, make_noise
from caloforge.errors import CaloforgeError

__all__ = ["ShowerClient", "batch_size_counts", "generate_remote", "iter_generate_remote", "parse_url"]

Protocol = Literal["http", "grpc"]


def parse_url(url: str, protocol: str | None = None) -> tuple[str, Protocol]:
    """``(host:port, protocol)`` from ``http://h:p``, ``grpc://h:p`` or ``h:p`` (+ ``protocol``, default http)."""
    scheme, sep, rest = url.partition("://")
    if sep:
        if scheme not in ("http", "grpc"):
            raise CaloforgeError(f"server URL {url!r}: scheme must be http:// or grpc://")
        if protocol and protocol != scheme:
            raise CaloforgeError(f"server URL {url!r} says {scheme} but protocol {protocol!r} was requested")
        protocol, url = scheme, rest
    protocol = protocol or "http"
    if protocol not in ("http", "grpc"):
        raise CaloforgeError(f"protocol must be 'http' or 'grpc', got {protocol!r}")
    host, _, port = url.rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise CaloforgeError(f"server URL {url!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    return f"{host}:{port}", protocol  # type: ignore[return-value]


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0  # gRPC JSON writes int64 as strings


def batch_size_counts(statistics: dict[str, Any]) -> dict[int, int]:
    """``{batch size: number of executions}`` from an inference-statistics reply (HTTP or gRPC form)."""
    counts: dict[int, int] = {}
    for model in statistics.get("model_stats", []):
        for entry in model.get("batch_stats", []):
            size = _int(entry.get("batch_size"))
            counts[size] = counts.get(size, 0) + _int(entry.get("compute_infer", {}).get("count"))
    return dict(sorted(counts.items()))


class ShowerClient:
    """One connection to ``model_name`` on a Triton server (not shared between threads).

    Use it as a context manager or call :meth:`close`: open connections delay a server shutdown.
    """

    def __init__(self, url: str, *, protocol: str | None = None, model_name: str = "caloforge",
                 timeout_s: float = 120.0) -> None:
        self.address, self.protocol = parse_url(url, protocol)
        self.model_name = model_name
        self.timeout_s = timeout_s
        if self.protocol == "http":
            import tritonclient.http as client_module

            self._client = client_module.InferenceServerClient(
                self.address, connection_timeout=timeout_s, network_timeout=timeout_s)
        else:
            import tritonclient.grpc as client_module

            self._client = client_module.InferenceServerClient(self.address)
        self._module = client_module
        self._config: dict[str, Any] | None = None

    # ------------------------------------------------------------------ plumbing
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from tritonclient.utils import InferenceServerException

        try:
            return fn(*args, **kwargs)
        except InferenceServerException as exc:
            raise CaloforgeError(f"Triton {self.protocol}://{self.address} model {self.model_name!r}: {what}: "
                                 f"{exc.message()}") from None
        except (ConnectionError, OSError) as exc:
            raise CaloforgeError(f"cannot reach Triton server at {self.protocol}://{self.address}: {exc}") from None

    def _json(self, what: str, method: str, **kwargs: Any) -> dict[str, Any]:
        if self.protocol == "grpc":
            kwargs.update(as_json=True, client_timeout=self.timeout_s)
        return self._call(what, getattr(self._client, method), **kwargs)

    # ------------------------------------------------------------------ the requests SONIC makes
    def is_ready(self) -> bool:
        try:
            return bool(self._client.is_server_ready()) and bool(self._client.is_model_ready(self.model_name))
        except Exception:  # any transport failure means "not ready"
            return False

    def model_config(self) -> dict[str, Any]:
        """The model's ``config.pbtxt`` as Triton resolved it (name, max_batch_size, input, output, ...)."""
        if self._config is None:
            reply = self._json("model config", "get_model_config", model_name=self.model_name)
            self._config = reply.get("config", reply)
        return self._config

    def model_metadata(self) -> dict[str, Any]:
        """Model metadata: name, versions, platform, inputs/outputs with datatype and shape."""
        return self._json("model metadata", "get_model_metadata", model_name=self.model_name)

    def statistics(self) -> dict[str, Any]:
        """Inference statistics (``model_stats``: counts, queue/compute times, ``batch_stats`` per batch size)."""
        return self._json("inference statistics", "get_inference_statistics", model_name=self.model_name)

    def served_metadata(self) -> dict[str, Any]:
        """The export metadata of the served caloforge model (geometry, units, voxel order, sampler,
        steps, noise parts, check result), from the config parameter ``caloforge_metadata``."""
        text = self.model_config().get("parameters", {}).get("caloforge_metadata", {}).get("string_value", "")
        if not text:
            raise CaloforgeError(f"model {self.model_name!r} carries no caloforge metadata: not a caloforge model")
        return json.loads(text)

    # ------------------------------------------------------------------ inference
    @property
    def max_batch_size(self) -> int:
        return _int(self.model_config().get("max_batch_size"))

    @property
    def noise_parts(self) -> tuple[int, ...]:
        """Sizes of the parts of the ``noise`` input (config parameter ``noise_parts``), in draw order."""
        config = self.model_config()
        text = config.get("parameters", {}).get("noise_parts", {}).get("string_value", "")
        if not any(entry["name"] == INPUT_NAMES[1] for entry in config.get("input", [])) or not text:
            raise CaloforgeError(f"model {self.model_name!r} has no input {INPUT_NAMES[1]!r} with noise_parts: "
                                 "not a caloforge model")
        return tuple(int(p) for p in text.split(","))

    def infer(self, energies_mev: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """One request: ``energies_mev (n, 1)`` and ``noise (n, D)`` -> ``showers (n, V)`` float32 MeV.

        Server-side validation errors (bad shape, NaN or non-positive energy, batch too large) raise
        :class:`CaloforgeError` with the server's message.
        """
        arrays = (np.ascontiguousarray(energies_mev, dtype=np.float32), np.ascontiguousarray(noise, dtype=np.float32))
        inputs = []
        for name, array in zip(INPUT_NAMES, arrays):
            tensor = self._module.InferInput(name, list(array.shape), "FP32")
            if self.protocol == "http":
                tensor.set_data_from_numpy(array, binary_data=True)
            else:
                tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [self._module.InferRequestedOutput(OUTPUT_NAMES[0], **({"binary_data": True}
                                                                        if self.protocol == "http" else {}))]
        kwargs = {"timeout": int(self.timeout_s)} if self.protocol == "http" else {"client_timeout": self.timeout_s}
        result = self._call("inference", self._client.infer, self.model_name, inputs, outputs=outputs, **kwargs)
        return result.as_numpy(OUTPUT_NAMES[0])

    def close(self) -> None:
        """Close the connection (Triton's graceful shutdown waits for open HTTP connections)."""
        self._client.close()

    def __enter__(self) -> "ShowerClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_generate_remote(url: str, energies_mev: np.ndarray, batch_size: int = 100, seed: int = 0, *,
                         protocol: str | None = None, model_name: str = "caloforge", concurrency: int = 4,
                         timeout_s: float = 120.0,
                         voxel_order: str = "calochallenge") -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, showers (b, V) float32 MeV)`` chunks in order for ``energies_mev (N,)`` or ``(N, 1)``.

    Requests of ``batch_size`` showers (at most the model's max_batch_size) are kept ``concurrency``
    at a time in flight, so the server can batch across them. The request starting at shower ``i``
    uses the noise of :func:`~caloforge.deploy.graph.make_noise` for ``(seed, i)``. The served model
    must emit ``voxel_order`` (refused otherwise, so a Par04-ordered export never lands in a
    CaloChallenge file).
    """
    energies = np.asarray(energies_mev, dtype=np.float32).reshape(-1, 1)
    with ShowerClient(url, protocol=protocol, model_name=model_name, timeout_s=timeout_s) as probe:
        max_batch, noise_parts = probe.max_batch_size, probe.noise_parts
        served_order = probe.served_metadata().get("voxel_order")
    if served_order != voxel_order:
        raise CaloforgeError(f"model {model_name!r} on {url} emits voxel order {served_order!r}, "
                             f"expected {voxel_order!r}")
    if batch_size < 1 or batch_size > max_batch:
        raise CaloforgeError(f"batch size {batch_size}: model {model_name!r} accepts 1 to {max_batch} "
                             "showers per request")
    local = threading.local()
    clients: list[ShowerClient] = []

    def one(start: int) -> np.ndarray:
        if not hasattr(local, "client"):
            local.client = ShowerClient(url, protocol=protocol, model_name=model_name, timeout_s=timeout_s)
            clients.append(local.client)
        chunk = energies[start:start + batch_size]
        return local.client.infer(chunk, make_noise(noise_parts, len(chunk), seed, start=start))

    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            window: deque[tuple[int, Future[np.ndarray]]] = deque()
            for start in range(0, len(energies), batch_size):
                window.append((start, pool.submit(one, start)))
                if len(window) >= 2 * concurrency:
                    first, future = window.popleft()
                    yield first, future.result()
            while window:
                first, future = window.popleft()
                yield first, future.result()
    finally:
        for client in clients:
            client.close()


def generate_remote(url: str, energies_mev: np.ndarray, batch_size: int = 100, seed: int = 0, *,
                    protocol: str | None = None, model_name: str = "caloforge", concurrency: int = 4,
                    progress: bool = True, timeout_s: float = 120.0, voxel_order: str = "calochallenge") -> np.ndarray:
    """Showers ``(N, V) float32 MeV`` for ``energies_mev (N,) or (N, 1)`` MeV from a Triton server.

    Equal to ``generate_showers(model, energies_mev, seed=seed, batch_size=batch_size)`` with the
    sampler baked into the served graph, up to float rounding; independent of ``concurrency`` and protocol.
    """
    from tqdm import tqdm

    energies = np.asarray(energies_mev, dtype=np.float32).reshape(-1, 1)
    parts = []
    with tqdm(total=len(energies), unit="shower", desc="triton", disable=not progress) as bar:
        for _, showers in iter_generate_remote(url, energies, batch_size, seed, protocol=protocol,
                                               model_name=model_name, concurrency=concurrency, timeout_s=timeout_s,
                                               voxel_order=voxel_order):
            parts.append(showers)
            bar.update(len(showers))
    if not parts:
        raise CaloforgeError("no incident energies given")
    return np.concatenate(parts)
