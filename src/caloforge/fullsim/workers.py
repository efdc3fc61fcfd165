"""Worker processes, each with its own Geant4 run manager (spawned, so Geant4 never lives in the caller).

The caller puts chunks of shower indices on a task queue; each worker simulates a chunk with
:class:`~caloforge.fullsim.g4app.Geant4Simulation` and sends back ``(chunk_id, energies, showers,
cpu_s)``. Workers ignore SIGINT (the parent turns Ctrl-C or SIGTERM into KeyboardInterrupt and
terminates them; a worker whose parent was killed outright exits by itself) and write Geant4's own
output to a log file whose tail is quoted if a worker dies (e.g. a fatal G4Exception).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from caloforge import errors
from caloforge.errors import CaloforgeError

__all__ = ["SimulationError", "WorkerPool"]

_POLL_S = 0.5
_ORPHAN_CHECK_S = 5.0


class SimulationError(CaloforgeError):
    """A Geant4 worker failed (the message quotes Geant4's last output)."""


def _worker_main(worker_id: int, job: dict[str, Any], tasks: Any, results: Any, log_path: str) -> None:
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(job["env"])  # before geant4_pybind is imported
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        from caloforge.fullsim.environment import available_elements
        from caloforge.fullsim.g4app import Geant4Simulation, geant4_version
        from caloforge.fullsim.source import EnergySpec, shower_plan

        energy = EnergySpec.parse(job["energy"])
        sim = Geant4Simulation(job["detector"], job["particle"], available_elements(job["env"]["G4LEDATA"]),
                               job.get("offset_mm", (0.0, 0.0)))
    except CaloforgeError as exc:
        results.put(("error", worker_id, str(exc), type(exc).__name__))
        return
    except BaseException:  # noqa: BLE001 - reported to the parent with its traceback
        results.put(("error", worker_id, traceback.format_exc(), ""))
        return
    results.put(("ready", worker_id, geant4_version()))
    while True:
        try:
            task = tasks.get(timeout=_ORPHAN_CHECK_S)
        except queue.Empty:
            if os.getppid() != parent:  # the parent was killed: do not linger as an orphan
                return
            continue
        if task is None:
            break
        chunk_id, indices = task
        try:
            energies, seeds = shower_plan(job["seed"], np.asarray(indices), energy)
            showers, cpu_s = sim.run(energies, seeds)
        except BaseException:  # noqa: BLE001
            results.put(("error", worker_id, traceback.format_exc(), ""))
            return
        results.put(("done", chunk_id, energies, showers, cpu_s))


@contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Start spawned workers without re-running the caller's ``__main__`` module.

    Spawned children normally re-import the parent's main script, which makes a script without an
    ``if __name__ == "__main__":`` guard start simulations recursively. Workers need nothing from
    ``__main__`` (their target and arguments live in caloforge), so its origin is hidden from
    multiprocessing while the processes start.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _tail(path: Path, n_lines: int = 6) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n_lines:])


class WorkerPool:
    """``n_workers`` spawned Geant4 processes for one job (detector, particle, energy spectrum, seed).

    Use as a context manager; leaving it (also by an exception or Ctrl-C) terminates the workers.
    """

    def __init__(self, n_workers: int, job: dict[str, Any]) -> None:
        self.n_workers = int(n_workers)
        self.job = job
        self._ctx = mp.get_context("spawn")
        self._tasks = self._ctx.Queue()
        self._results = self._ctx.Queue()
        self._log_dir = Path(tempfile.mkdtemp(prefix="caloforge-geant4-"))
        self._procs: list[Any] = []
        self._ready: set[int] = set()
        self._saved_handlers: dict[int, Any] = {}
        self._signal: int | None = None
        self.geant4_version = ""  #: e.g. "geant4 11.4.1", set once a worker is ready

    def __enter__(self) -> "WorkerPool":
        self._install_signal_handlers()
        with _main_not_reimported():
            for i in range(self.n_workers):
                proc = self._ctx.Process(
                    target=_worker_main, name=f"caloforge-geant4-{i}", daemon=True,
                    args=(i, self.job, self._tasks, self._results, str(self._log_dir / f"worker{i}.log")),
                )
                proc.start()
                self._procs.append(proc)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.close(terminate=exc_type is not None)
        finally:
            for signum, handler in self._saved_handlers.items():
                signal.signal(signum, handler)
            self._saved_handlers = {}

    def _install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM only set a flag that the polling loop turns into KeyboardInterrupt.

        (A KeyboardInterrupt raised asynchronously can land in a weakref or queue callback, where
        Python ignores it; polling the flag makes Ctrl-C and batch-system kills reliable.)
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._saved_handlers[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = signum

    def close(self, terminate: bool = False) -> None:
        for proc in self._procs:
            if terminate and proc.is_alive():
                proc.terminate()
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._procs = []
        for q in (self._tasks, self._results):
            q.cancel_join_thread()
            q.close()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def _check_alive(self) -> None:
        for i, proc in enumerate(self._procs):
            if proc.exitcode not in (None, 0):
                stage = "while simulating" if i in self._ready else "while starting Geant4"
                tail = _tail(self._log_dir / f"worker{i}.log")
                raise SimulationError(f"Geant4 worker {i} died {stage} (exit code {proc.exitcode})"
                                      + (f"; last Geant4 output: {tail}" if tail else ""))

    def _handle(self, message: tuple) -> tuple | None:
        """Book-keep a worker message; raise on errors; return ``done`` payloads."""
        kind = message[0]
        if kind == "ready":
            self._ready.add(message[1])
            self.geant4_version = message[2]
            return None
        if kind == "error":
            _, worker_id, text, error_type = message
            if error_type:  # a user error (CaloforgeError subclass): re-raise as the same type
                cls = getattr(errors, error_type, None)
                cls = cls if isinstance(cls, type) and issubclass(cls, CaloforgeError) else CaloforgeError
                raise cls(text)
            raise RuntimeError(f"Geant4 worker {worker_id} failed with an unexpected error:\n{text}")
        return message[1:]

    def _next(self) -> tuple | None:
        if self._signal is not None:
            raise KeyboardInterrupt(f"signal {signal.Signals(self._signal).name}")
        try:
            return self._handle(self._results.get(timeout=_POLL_S))
        except queue.Empty:
            self._check_alive()
            return None

    def wait_ready(self) -> None:
        """Block until every worker has built its Geant4 application (raises its error if one fails)."""
        while len(self._ready) < len(self._procs):
            if self._next() is not None:
                raise RuntimeError("a worker sent results before any task was given")

    def map(self, chunks: Sequence[Sequence[int]]) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Simulate ``chunks`` of shower indices; yield ``(chunk_id, energies, showers, cpu_s)`` as they finish."""
        for chunk_id, indices in enumerate(chunks):
            self._tasks.put((chunk_id, [int(i) for i in indices]))
        for _ in self._procs:
            self._tasks.put(None)
        remaining = len(chunks)
        while remaining:
            payload = self._next()
            if payload is not None:
                remaining -= 1
                yield payload
