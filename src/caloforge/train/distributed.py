"""Data-parallel training across processes: ``torchrun`` + PyTorch DistributedDataParallel.

``caloforge train`` needs no flag for this: started by ``torchrun`` (which sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) it joins the process group
(``gloo`` on CPU, ``nccl`` when CUDA is available; override with ``CALOFORGE_DIST_BACKEND``),
wraps the model in :class:`~torch.nn.parallel.DistributedDataParallel` and splits every step.

How a step is split (K processes, global batch B = ``batch_size`` of the config):

* every rank draws the same permutation, noise levels and noise from the same seeded generator
  (the generators stay in step on all ranks, so a checkpoint of rank 0 is valid for every rank);
* rank r takes rows ``r, r + K, r + 2K, ...`` of the global batch (the interleaved split of
  ``torch.utils.data.DistributedSampler``, applied per global batch), i.e. about B / K showers;
* its loss is ``sum of its per-sample losses * K / B``; DDP averages gradients over the K ranks,
  so the update equals the single-process update on the whole global batch (up to floating-point
  summation order), even when B is not a multiple of K;
* parameters are identical after every step, so the EMA (updated on every rank) is identical too;
* validation chunks are shared out between ranks and the loss sums all-reduced;
* only rank 0 writes files (checkpoints, history, config) and shows the progress bar.

Everything is a no-op without ``torchrun`` (``world_size`` 1): single-process results are
unchanged bit for bit.
"""

from __future__ import annotations

import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from caloforge.errors import CaloforgeError

__all__ = ["BACKEND_ENV", "DistContext", "SINGLE", "launched_by_torchrun", "is_main_process", "process_group"]

#: environment variable that overrides the backend choice (``gloo`` or ``nccl``)
BACKEND_ENV = "CALOFORGE_DIST_BACKEND"

T = TypeVar("T")


def launched_by_torchrun() -> bool:
    """True when the torchrun environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) is set."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def is_main_process() -> bool:
    """True on rank 0 and outside torchrun (use for console output after training)."""
    return os.environ.get("RANK", "0") == "0"


class _Losses(nn.Module):
    """Both per-sample training losses in one ``forward`` (DDP expects one forward per backward).

    ``forward(batch, sigma, noise, layer_batch, layer_sigma, layer_noise) -> (voxel (n,), layer (m,) | None)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any, sigma: torch.Tensor, noise: torch.Tensor, layer_batch: Any = None,
                layer_sigma: torch.Tensor | None = None, layer_noise: torch.Tensor | None = None):
        loss_v = self.model.voxel_loss(batch, sigma, noise)
        loss_l = None if layer_batch is None else self.model.layer_loss(layer_batch, layer_sigma, layer_noise)
        return loss_v, loss_l


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on its node,
    ``device`` it computes on. :data:`SINGLE` is the single-process context."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    # ---------------------------------------------------------------- splitting a global batch
    def rows(self, n: int) -> slice | torch.Tensor:
        """Rows of a global batch of ``n`` that this rank computes: ``rank::world_size``
        (all rows on a single process; row 0 with zero weight if ``n < world_size`` leaves this
        rank without a row, so that every rank still runs forward and backward)."""
        if not self.distributed:
            return slice(None)
        if self.rank >= n:
            return torch.zeros(1, dtype=torch.long)
        return torch.arange(self.rank, n, self.world_size)

    def batch_mean(self, losses: torch.Tensor, n: int) -> torch.Tensor:
        """This rank's share of the global-batch mean: ``losses`` (rows of :meth:`rows`) of a global
        batch of ``n``. DDP's gradient average over ranks then gives the gradient of the mean."""
        if not self.distributed:
            return losses.mean()
        if self.rank >= n:
            return losses.sum() * 0.0
        return losses.sum() * (self.world_size / n)

    # ---------------------------------------------------------------- model and tensors
    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to call for the training losses (see :class:`_Losses`), DDP-wrapped when
        distributed. Buffers (fitted preprocessing) are constant, so they are not re-broadcast."""
        losses = _Losses(model)
        if not self.distributed:
            return losses
        ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel
        # torch >= 2.13 renamed broadcast_buffers (deprecated) to forward_sync_buffers
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                   else {"broadcast_buffers": False})
        return ddp(losses, device_ids=ids, **no_sync)

    def to_device(self, value: T) -> T:
        """Move a tensor, or a dataclass of tensors (e.g. ``EncodedBatch``), to :attr:`device`."""
        if value is None or isinstance(value, torch.Tensor):
            return value if value is None else value.to(self.device)
        fields = {k: self.to_device(v) for k, v in vars(value).items()}
        return type(value)(**fields)

    # ---------------------------------------------------------------- collectives
    def all_reduce_sum(self, values: Sequence[float]) -> list[float]:
        """Sum ``values`` (float64) over all ranks; unchanged on a single process."""
        if not self.distributed:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (e.g. a rank ran out of time)."""
        if not self.distributed:
            return bool(flag)
        return self.all_reduce_sum([1.0 if flag else 0.0])[0] > 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def main_first(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only and return its result on every rank (broadcast).

        A :class:`~caloforge.errors.CaloforgeError` raised on rank 0 is raised on every rank, so
        all processes stop with the same one-line message instead of waiting for each other.
        """
        if not self.distributed:
            return fn()
        payload: list[Any] = [None]
        if self.is_main:
            try:
                payload = [("ok", fn())]
            except CaloforgeError as exc:
                payload = [("error", exc)]
            except Exception as exc:
                dist.broadcast_object_list([("crash", f"{type(exc).__name__}: {exc}")], src=0)
                raise
        dist.broadcast_object_list(payload, src=0)
        kind, value = payload[0]
        if kind == "error":
            raise value
        if kind == "crash":
            raise RuntimeError(f"rank 0 failed: {value}")
        return value


#: the single-process context (no process group, CPU)
SINGLE = DistContext()


def _backend_and_device(local_rank: int) -> tuple[str, torch.device]:
    backend = os.environ.get(BACKEND_ENV, "").strip().lower() or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend not in ("gloo", "nccl"):
        raise CaloforgeError(f"{BACKEND_ENV}={backend!r}: expected 'gloo' or 'nccl'")
    if backend == "gloo":
        return backend, torch.device("cpu")
    if not torch.cuda.is_available():
        raise CaloforgeError(f"{BACKEND_ENV}=nccl needs CUDA, but torch {torch.__version__} sees no GPU")
    if local_rank >= torch.cuda.device_count():
        raise CaloforgeError(f"local rank {local_rank} but only {torch.cuda.device_count()} GPU(s) on this node: "
                             "use torchrun --nproc_per_node <= number of GPUs")
    torch.cuda.set_device(local_rank)
    return backend, torch.device("cuda", local_rank)


@contextmanager
def process_group() -> Iterator[DistContext]:
    """The :class:`DistContext` of this process, joining the process group if started by torchrun.

    Outside torchrun: yields :data:`SINGLE`. Under torchrun with ``WORLD_SIZE`` > 1: calls
    ``init_process_group`` from the environment (``env://`` rendezvous), yields the context, waits
    for all ranks on success and calls ``destroy_process_group`` at the end. A process group that
    the caller already started is used as is and left open. With one process under torchrun
    and a GPU, it trains on ``cuda:LOCAL_RANK`` without a process group.
    """
    if dist.is_available() and dist.is_initialized():
        backend = dist.get_backend()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
        yield DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device)
        return
    if not launched_by_torchrun():
        yield SINGLE
        return
    try:
        rank, world, local_rank = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError:
        raise CaloforgeError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (start with torchrun)") from None
    backend, device = _backend_and_device(local_rank)
    if world == 1:
        yield DistContext(0, 1, local_rank, device)
        return
    if not dist.is_available():
        raise CaloforgeError(f"torch {torch.__version__} was built without torch.distributed")
    try:
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                                device_id=device if device.type == "cuda" else None)
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaloforgeError(f"cannot join the process group ({backend}, rank {rank} of {world}): {first}") from None
    ok = False
    try:
        yield DistContext(rank, world, local_rank, device)
        ok = True
    finally:
        if ok:
            dist.barrier()  # files written by rank 0 are complete when train() returns on any rank
        dist.destroy_process_group()
