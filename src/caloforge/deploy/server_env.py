"""The server's own virtual environment: the ``tritonserver`` binary from PyPI ``nvidia-pytriton``.

Triton's Python backend embeds the interpreter of the environment it finds first on ``PATH`` and
needs numpy<2, while caloforge uses numpy 2; so the server runs from a separate venv built from the
pinned ``server-requirements.txt`` (installed with ``--no-deps``). The venv's interpreter must be
built with a shared ``libpython`` (the backend stub links against it) and its folder goes on
``LD_LIBRARY_PATH`` (pytriton issue 51), followed by the libraries bundled in ``nvidia_pytriton.libs``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from caloforge.errors import CaloforgeError

__all__ = ["SERVER_VENV_ENV", "ServerEnv", "default_venv_dir", "ensure_server_env", "server_requirements"]

#: environment variable naming the server venv folder (default: ~/.cache/caloforge/triton-<hash>)
SERVER_VENV_ENV = "CALOFORGE_TRITON_VENV"
_READY = "caloforge-server-env.json"
_BUILDING = "caloforge-server-env.building"
_BACKENDS = "caloforge-backends"
_SUPPORTED = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")  # stubs shipped by nvidia-pytriton 0.7.0
_PROBE = ("import json, sys, sysconfig, site; print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
          "'shared': bool(sysconfig.get_config_var('Py_ENABLE_SHARED')), 'libdir': sysconfig.get_config_var('LIBDIR'), "
          "'site': site.getsitepackages()[0]}))")


def server_requirements() -> str:
    """Text of the pinned server requirements file shipped with caloforge."""
    return resources.files("caloforge.deploy").joinpath("server-requirements.txt").read_text()


def default_venv_dir() -> Path:
    """``$CALOFORGE_TRITON_VENV`` or ``~/.cache/caloforge/triton-<hash of requirements and Python>``."""
    if os.environ.get(SERVER_VENV_ENV):
        return Path(os.environ[SERVER_VENV_ENV]).expanduser()
    key = hashlib.sha256((server_requirements() + sys.version).encode()).hexdigest()[:10]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "caloforge" / f"triton-{key}"


@dataclass(frozen=True)
class ServerEnv:
    """A ready server environment: where the binary, the backends and the libraries are."""

    venv: Path
    tritonserver: Path
    backend_dir: Path
    library_dirs: tuple[Path, ...]

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Process environment for ``tritonserver``: venv first on PATH, libpython + bundled libs on LD_LIBRARY_PATH."""
        env = dict(os.environ if base is None else base)
        env.pop("PYTHONHOME", None)
        env.pop("PYTHONPATH", None)
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PATH"] = os.pathsep.join([str(self.venv / "bin"), env.get("PATH", "")])
        libs = [str(p) for p in self.library_dirs]
        if env.get("LD_LIBRARY_PATH"):
            libs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
        return env


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise CaloforgeError(f"server environment: {what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def _load_ready(venv: Path, requirements: str) -> ServerEnv | None:
    marker = venv / _READY
    if not marker.is_file() or (venv / _BUILDING).exists():
        return None
    info = json.loads(marker.read_text())
    if info.get("requirements") != requirements:
        return None
    env = ServerEnv(venv, Path(info["tritonserver"]), Path(info["backend_dir"]),
                    tuple(Path(p) for p in info["library_dirs"]))
    return env if env.tritonserver.is_file() else None


def _build(venv: Path, python: str, requirements: str, log: Callable[[str], None]) -> ServerEnv:
    if venv.exists() and any(venv.iterdir()):
        if not ((venv / _READY).exists() or (venv / _BUILDING).exists()):
            raise CaloforgeError(f"{venv}: exists and is not a caloforge server environment; choose another --venv")
        shutil.rmtree(venv)  # ours: outdated pins or an interrupted build
    log(f"creating the Triton server environment in {venv} (one time, under a minute)")
    venv.mkdir(parents=True, exist_ok=True)
    (venv / _BUILDING).touch()
    _run([python, "-m", "venv", str(venv)], "python -m venv")
    vpython = str(venv / "bin" / "python")
    probe = json.loads(_run([vpython, "-c", _PROBE], "probing the venv interpreter"))
    if probe["version"] not in _SUPPORTED:
        raise CaloforgeError(f"server environment: Python {probe['version']} has no Triton backend stub "
                             f"(supported: {', '.join(_SUPPORTED)}); pass --python with one of those")
    if not probe["shared"]:
        raise CaloforgeError(f"server environment: {python} is built without a shared libpython, which Triton's "
                             "Python backend needs; pass --python with an interpreter built with --enable-shared")
    req_file = venv / "server-requirements.txt"
    req_file.write_text(requirements)
    _run([vpython, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
          "-r", str(req_file)], "pip install -r server-requirements.txt")
    dist = Path(probe["site"]) / "pytriton" / "tritonserver"
    backends = venv / _BACKENDS
    shutil.copytree(dist / "backends", backends)
    shutil.copy2(dist / "python_backend_stubs" / probe["version"] / "triton_python_backend_stub",
                 backends / "python" / "triton_python_backend_stub")
    env = ServerEnv(venv, dist / "bin" / "tritonserver", backends,
                    (Path(probe["libdir"]), Path(probe["site"]) / "nvidia_pytriton.libs"))
    (venv / _READY).write_text(json.dumps({
        "requirements": requirements, "tritonserver": str(env.tritonserver), "backend_dir": str(env.backend_dir),
        "library_dirs": [str(p) for p in env.library_dirs], "python": probe["version"]}, indent=2))
    (venv / _BUILDING).unlink()
    return env


def ensure_server_env(venv: str | Path | None = None, *, python: str | None = None,
                      log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)) -> ServerEnv:
    """Return the server environment in ``venv`` (default :func:`default_venv_dir`), creating it if needed.

    Creation runs ``python -m venv`` with ``python`` (default: the interpreter running caloforge) and
    ``pip install --no-deps -r server-requirements.txt`` (from PyPI); a marker file records the
    requirements, so a changed pin rebuilds it. A file lock makes concurrent callers wait for one build.
    """
    venv = Path(venv).expanduser().resolve() if venv else default_venv_dir()
    requirements = server_requirements()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ready = _load_ready(venv, requirements)
        if ready is not None:
            return ready
        return _build(venv, python or sys.executable, requirements, log)
