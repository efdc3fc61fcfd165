"""Run a real Triton Inference Server (``tritonserver`` from ``nvidia-pytriton``) on loopback.

:class:`TritonServer` starts the binary on a model repository with HTTP and gRPC bound to
127.0.0.1 (metrics, SageMaker and Vertex endpoints off), waits until ``/v2/health/ready`` answers,
and stops it with SIGTERM (Triton's graceful shutdown), then SIGKILL of its process group if it
hangs. :func:`serve` is the blocking ``caloforge serve`` loop (Ctrl-C / SIGTERM stop it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from caloforge.deploy.server_env import ServerEnv, ensure_server_env
from caloforge.errors import CaloforgeError

__all__ = ["LOOPBACK", "TritonServer", "free_port", "repository_models", "serve"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def repository_models(repository: str | Path) -> list[str]:
    """Names of the models (sub-folders with a ``config.pbtxt``) in a Triton repository; raises if none."""
    repository = Path(repository)
    if not repository.is_dir():
        raise CaloforgeError(f"{repository}: Triton model repository not found (create one with "
                             "`caloforge export --format triton --out REPO`)")
    models = sorted(p.name for p in repository.iterdir()
                    if p.is_dir() and not p.name.startswith(".") and (p / "config.pbtxt").is_file())
    if not models:
        raise CaloforgeError(f"{repository}: holds no model (no <name>/config.pbtxt)")
    return models


class TritonServer:
    """A ``tritonserver`` process serving ``repository`` on 127.0.0.1.

    Use as a context manager (``with TritonServer(repo) as server: ...``) or call :meth:`start` and
    :meth:`stop`. ``log_file``: where the server's output goes (``None``: inherit this process's).
    """

    def __init__(self, repository: str | Path, *, http_port: int = 8000, grpc_port: int = 8001,
                 env: ServerEnv | None = None, venv: str | Path | None = None, log_file: str | Path | None = None,
                 exit_timeout_s: int = 10) -> None:
        self.repository = Path(repository).resolve()
        self.models = repository_models(self.repository)
        self.http_port, self.grpc_port = int(http_port), int(grpc_port)
        self._env = env
        self._venv = venv
        self.log_file = Path(log_file) if log_file else None
        self.exit_timeout_s = exit_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._log_handle = None

    @property
    def http_url(self) -> str:
        return f"{LOOPBACK}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    def command(self, env: ServerEnv) -> list[str]:
        return [
            str(env.tritonserver), f"--model-repository={self.repository}",
            f"--backend-directory={env.backend_dir}",
            f"--http-address={LOOPBACK}", f"--http-port={self.http_port}",
            f"--grpc-address={LOOPBACK}", f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false", "--allow-sagemaker=false", "--allow-vertex-ai=false",
            "--strict-readiness=true", "--exit-on-error=true", f"--exit-timeout-secs={self.exit_timeout_s}",
        ]

    def start(self, timeout_s: float = 180.0) -> "TritonServer":
        """Start the server and block until it is ready (raises with the log tail if it exits or times out)."""
        if self.process is not None:
            return self
        for port in (self.http_port, self.grpc_port):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                if s.connect_ex((LOOPBACK, port)) == 0:
                    raise CaloforgeError(f"port {port} on {LOOPBACK} is already in use; choose another "
                                         "(--http-port / --grpc-port)")
        env = self._env or ensure_server_env(self._venv)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = open(self.log_file, "ab")
        self.process = subprocess.Popen(
            self.command(env), env=env.environ(), stdin=subprocess.DEVNULL,
            stdout=self._log_handle, stderr=subprocess.STDOUT if self._log_handle else None,
            start_new_session=True,  # Ctrl-C reaches caloforge, which shuts the server down in order
        )
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise CaloforgeError(f"tritonserver exited with code {code} before it was ready"
                                     f"{self._log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.2)
        raise CaloforgeError(f"tritonserver not ready after {timeout_s:.0f} s{self._log_tail()}")

    def _log_tail(self, lines: int = 8) -> str:
        if self.log_file is None or not self.log_file.is_file():
            return ""
        tail = [line for line in self.log_file.read_text(errors="replace").splitlines() if line.strip()][-lines:]
        return f" (log {self.log_file}):\n" + "\n".join(tail)

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM (graceful: in-flight requests finish), then SIGKILL of the process group; returns the exit code."""
        proc, self.process = self.process, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=timeout_s or self.exit_timeout_s + 10)
            except subprocess.TimeoutExpired:
                code = None
            with contextlib.suppress(ProcessLookupError, PermissionError):  # the Python backend stubs are
                os.killpg(proc.pid, signal.SIGKILL)  # children of tritonserver, in its process group
            if code is None:
                code = proc.wait()
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        return code

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve(repository: str | Path, *, http_port: int = 8000, grpc_port: int = 8001, venv: str | Path | None = None,
          python: str | None = None, log_file: str | Path | None = None) -> int:
    """Serve ``repository`` on 127.0.0.1 until Ctrl-C or SIGTERM; returns 0 after a clean stop.

    Creates the server venv first if needed (see :func:`~caloforge.deploy.server_env.ensure_server_env`).
    """
    models = repository_models(repository)
    env = ensure_server_env(venv, python=python)
    server = TritonServer(repository, http_port=http_port, grpc_port=grpc_port, env=env, log_file=log_file)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server.start()
        print(f"Triton serving {', '.join(models)} from {server.repository}\n"
              f"  HTTP  http://{server.http_url}   gRPC  {server.grpc_url}   (loopback only; Ctrl-C stops)",
              file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop like SIGTERM
            while not stop.wait(0.5):
                if server.process is None or server.process.poll() is not None:
                    raise CaloforgeError(f"tritonserver stopped unexpectedly{server._log_tail()}")
    finally:
        signal.signal(signal.SIGTERM, previous)
        code = server.stop()
    print(f"Triton server stopped (exit code {code})", file=sys.stderr)
    return 0
