"""The training loop: AdamW, warm-up + cosine learning rate, EMA, validation each epoch, early
stopping, resumable checkpoints, progress bar.

Output folder::

    config.yaml   resolved configuration (+ data files and seed)
    model.pt      best model so far: EMA weights of each part (voxel network, layer-energy network)
                  from that part's best validation epoch (:mod:`caloforge.train.best_parts`;
                  self-describing; what ``caloforge generate`` loads)
    last.pt       training state after the last finished epoch (``--resume`` continues from it)
    history.csv   per epoch: steps, train/validation losses (voxel, layer), learning rate, seconds
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from caloforge.config import save_config, to_dict
from caloforge.diffusion.model import EncodedBatch, ShowerDiffusionModel
from caloforge.diffusion.schedules import sample_training_sigmas
from caloforge.errors import CaloforgeError, InputFileError
from caloforge.geometry import get_geometry
from caloforge.io import read_showers, validate_file
from caloforge.train.best_parts import BestParts
from caloforge.train.checkpoint import load_training_state, save_model_file, save_training_state, write_history
from caloforge.train.config import TrainConfig
from caloforge.train.distributed import SINGLE, DistContext, process_group
from caloforge.train.ema import EMA

__all__ = ["RESUMABLE_CHANGES", "TrainResult", "learning_rate", "train", "validation_loss"]

#: settings that may change when resuming (to extend or cut a run); all others must match
RESUMABLE_CHANGES = ("epochs", "max_minutes", "patience")


@dataclass
class TrainResult:
    """What a run produced. ``history``: one dict per epoch (see ``history.csv``)."""

    out_dir: Path
    model_path: Path
    epochs: int
    steps: int
    best_val_loss: float
    stopped: str
    history: list[dict[str, float]] = field(default_factory=list)


def learning_rate(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay from ``lr`` to ``lr_min`` at ``total_steps``
    (``cfg``: any config with those three fields; the refiner training uses it too)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * progress))


def _load(path: Path, n_voxels: int, geometry_name: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    info = validate_file(path, n_voxels, geometry_name)
    if info.n_showers < 2:
        raise InputFileError(f"{path}: needs at least 2 showers to train, has {info.n_showers}")
    energies, showers = read_showers(path, max_showers=limit)
    return torch.from_numpy(energies), torch.from_numpy(showers)


@torch.no_grad()
def validation_loss(model: ShowerDiffusionModel, val: EncodedBatch, seed: int, cfg: TrainConfig, *,
                    dist: DistContext = SINGLE) -> tuple[float, float]:
    """Mean voxel and layer loss (per sample) on ``val`` with fixed noise draws (same every epoch for
    the same ``seed``), so epochs are comparable; layer loss 0 without a layer model. ``dist``: under
    torchrun the 256-shower chunks are shared out between ranks and the sums all-reduced."""
    gen = torch.Generator().manual_seed(seed + 7919)
    n = val.voxels.shape[0]
    sig_v = sample_training_sigmas(n, cfg.sigma_sampling, p_mean=cfg.p_mean, p_std=cfg.p_std, generator=gen)
    noise_v = torch.randn(val.voxels.shape, generator=gen)
    total_v = total_l = 0.0
    for k, lo in enumerate(range(0, n, 256)):
        idx = torch.arange(lo, min(n, lo + 256))
        mine = k % dist.world_size == dist.rank
        if mine:
            total_v += float(model.voxel_loss(dist.to_device(val.subset(idx)), dist.to_device(sig_v[idx]),
                                              dist.to_device(noise_v[idx])).sum())
        if model.has_layer_model:
            sig_l = sample_training_sigmas(len(idx), cfg.sigma_sampling, p_mean=cfg.p_mean, p_std=cfg.p_std, generator=gen)
            noise_l = torch.randn(val.layers[idx].shape, generator=gen)
            if mine:
                total_l += float(model.layer_loss(dist.to_device(val.subset(idx)), dist.to_device(sig_l),
                                                  dist.to_device(noise_l)).sum())
    total_v, total_l = dist.all_reduce_sum([total_v, total_l])
    return total_v / n, total_l / n


def train(
    config: TrainConfig, data: str | Path, out_dir: str | Path, *, val: str | Path | None = None, seed: int = 0,
    resume: bool = False, progress: bool = True,
) -> TrainResult:
    """Train a :class:`ShowerDiffusionModel` on a CaloChallenge file and write ``out_dir``.

    ``data``/``val``: CaloChallenge HDF5 files (``val`` default: a ``val_fraction`` split of
    ``data``); ``seed``: initialisation, shuffling, noise; ``resume``: continue from
    ``out_dir/last.pt`` (the configuration must be unchanged except :data:`RESUMABLE_CHANGES`;
    a changed ``epochs`` also stretches the learning-rate schedule).

    Started by ``torchrun`` it trains data-parallel (DDP) over all processes with the same result
    as one process (``batch_size`` is the global batch; see :mod:`caloforge.train.distributed`).
    """
    out = Path(out_dir)
    with process_group() as dist:
        state = dist.main_first(lambda: _resume_state(config, out, seed, resume))
        old_threads = torch.get_num_threads()
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            return _run(config, Path(data), None if val is None else Path(val), out, seed, state, progress, dist)
        finally:
            torch.set_num_threads(old_threads)


def _resume_state(config: TrainConfig, out: Path, seed: int, resume: bool) -> dict[str, Any] | None:
    """Check that ``out`` suits a new (or resumed) run; the training state to resume from."""
    state_path, model_path = out / "last.pt", out / "model.pt"
    if resume and not state_path.is_file():
        raise CaloforgeError(f"{out}: nothing to resume (no last.pt)")
    if not resume and (state_path.exists() or model_path.exists()):
        raise CaloforgeError(f"{out}: already holds a training run (use --resume to continue it, or another --out)")
    state: dict[str, Any] | None = None
    if resume:
        state = load_training_state(state_path)
        changed = sorted(k for k, v in to_dict(config).items()
                         if state["config"].get(k) != v and k not in RESUMABLE_CHANGES)
        if changed or seed != state["seed"]:
            what = f"config keys {changed}" if changed else "seed"
            raise CaloforgeError(f"{out}: cannot resume: {what} differ from the run in last.pt")
    return state


def _run(cfg: TrainConfig, data: Path, val: Path | None, out: Path, seed: int, state: dict | None,
         progress: bool, dist: DistContext = SINGLE) -> TrainResult:
    geometry = get_geometry(cfg.geometry)
    model_path = out / "model.pt"
    energies, showers = _load(data, geometry.n_voxels, geometry.name, cfg.max_train_showers)
    split = torch.Generator().manual_seed(seed)
    if val is not None:
        val_e, val_s = _load(val, geometry.n_voxels, geometry.name, cfg.val_max_showers)
    else:
        perm = torch.randperm(energies.shape[0], generator=split)
        n_val = max(1, int(round(cfg.val_fraction * energies.shape[0])))
        val_idx, train_idx = perm[:n_val][: cfg.val_max_showers], perm[n_val:]
        val_e, val_s = energies[val_idx], showers[val_idx]
        energies, showers = energies[train_idx], showers[train_idx]

    torch.manual_seed(seed)
    model = ShowerDiffusionModel(geometry, cfg.model)
    model.fit_preprocessing(energies, showers)
    train_set, val_set = model.encode(energies, showers), model.encode(val_e, val_s)
    del showers, val_s
    model.to(dist.device)
    n_train = train_set.voxels.shape[0]
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema_decay)
    gen = torch.Generator().manual_seed(seed + 1)
    history: list[dict[str, float]] = []
    epoch = step = bad_epochs = 0
    best_val = float("inf")
    best = BestParts()
    elapsed_before = 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        epoch, step, bad_epochs = state["epoch"], state["step"], state["bad_epochs"]
        best_val, history, elapsed_before = state["best_val"], list(state["history"]), state["elapsed_s"]
        if "best_parts" in state:  # states written before per-part selection start afresh here
            best.load_state_dict(state["best_parts"])
    elif dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
    if dist.is_main:
        save_config({"train": to_dict(cfg), "data": str(data), "val": None if val is None else str(val), "seed": seed,
                     "n_train": n_train, "n_val": int(val_set.voxels.shape[0]), "world_size": dist.world_size},
                    out / "config.yaml")
    train_losses = dist.wrap(model)  # DDP-wrapped under torchrun

    data_meta = {"train": data.name, "n_train": n_train, "val": val.name if val else f"{cfg.val_fraction} of train",
                 "n_val": int(val_set.voxels.shape[0])}
    start = time.perf_counter()
    deadline = None if cfg.max_minutes is None else cfg.max_minutes * 60.0 - elapsed_before
    stopped = "epochs"
    bar = tqdm(total=total_steps, initial=step, disable=not (progress and dist.is_main), desc="train", unit="step",
               dynamic_ncols=True)
    try:
        while epoch < cfg.epochs:
            model.train()
            perm = torch.randperm(n_train, generator=gen)
            sums = np.zeros(2)
            count = 0
            timed_out = False
            for lo in range(0, n_train, cfg.batch_size):
                for group in opt.param_groups:
                    group["lr"] = learning_rate(step, total_steps, cfg)
                # every rank draws the whole global batch and computes its rows (train/distributed.py)
                idx = perm[lo:lo + cfg.batch_size]
                n = idx.shape[0]
                sigma = sample_training_sigmas(n, cfg.sigma_sampling, p_mean=cfg.p_mean, p_std=cfg.p_std, generator=gen)
                noise = torch.randn((n, train_set.voxels.shape[1]), generator=gen)
                rows = dist.rows(n)
                batch = dist.to_device(train_set.subset(idx[rows]))
                lb = sig_l = noise_l = None
                if model.has_layer_model:
                    l_idx = torch.randint(n_train, (cfg.layer_batch_size,), generator=gen)
                    sig_l = sample_training_sigmas(cfg.layer_batch_size, cfg.sigma_sampling, p_mean=cfg.p_mean,
                                                   p_std=cfg.p_std, generator=gen)
                    noise_l = torch.randn((cfg.layer_batch_size, train_set.layers.shape[1]), generator=gen)
                    l_rows = dist.rows(cfg.layer_batch_size)
                    lb = dist.to_device(train_set.subset(l_idx[l_rows]))
                    sig_l, noise_l = dist.to_device(sig_l[l_rows]), dist.to_device(noise_l[l_rows])
                losses_v, losses_l = train_losses(batch, dist.to_device(sigma[rows]), dist.to_device(noise[rows]),
                                                  lb, sig_l, noise_l)
                loss_v = dist.batch_mean(losses_v, n)
                loss = loss_v
                loss_l = torch.zeros(())
                if losses_l is not None:
                    loss_l = dist.batch_mean(losses_l, cfg.layer_batch_size)
                    loss = loss + loss_l
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                ema.update(model)
                step += 1
                sums += (float(loss_v.detach()), float(loss_l.detach()))
                count += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, voxel=f"{sums[0] / count:.4f}", layer=f"{sums[1] / count:.4f}")
                if deadline is not None and dist.any(time.perf_counter() - start > deadline):
                    timed_out = True
                    break
            epoch += 1
            if dist.distributed:  # mean over the global batches of this epoch
                sums = np.asarray(dist.all_reduce_sum(sums)) / dist.world_size
            val_v, val_l = validation_loss(ema.model, val_set, seed, cfg, dist=dist)
            elapsed = elapsed_before + time.perf_counter() - start
            history.append({"epoch": epoch, "step": step, "train_voxel_loss": float(sums[0] / max(count, 1)),
                            "train_layer_loss": float(sums[1] / max(count, 1)), "val_voxel_loss": val_v,
                            "val_layer_loss": val_l, "lr": float(opt.param_groups[0]["lr"]), "elapsed_s": round(elapsed, 1)})
            if dist.is_main:
                bar.write(f"epoch {epoch}: train voxel {sums[0] / max(count, 1):.4f} layer {sums[1] / max(count, 1):.4f} | "
                          f"val voxel {val_v:.4f} layer {val_l:.4f} | {elapsed / 60:.1f} min")
            losses = {"voxel": val_v, **({"layer": val_l} if model.has_layer_model else {})}
            if best.update(ema.model, losses, epoch):
                best_val, bad_epochs = best.total_loss, 0
                if dist.is_main:
                    save_model_file(model_path, best.compose(ema.model), {
                        "epoch": epoch, "step": step, "val_loss": best_val, "val_voxel_loss": best.loss["voxel"],
                        "val_layer_loss": best.loss["layer"] if model.has_layer_model else 0.0,
                        "part_epochs": dict(best.epoch), "seed": seed, "data": data_meta,
                        "elapsed_s": round(elapsed, 1), "torch_version": str(torch.__version__),
                        "train_config": to_dict(cfg), "world_size": dist.world_size,
                    })
            else:
                bad_epochs += 1
            if dist.is_main:
                save_training_state(out / "last.pt", {
                    "config": to_dict(cfg), "geometry": geometry.to_dict(), "seed": seed, "model": model.state_dict(),
                    "ema": ema.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                    "epoch": epoch, "step": step, "bad_epochs": bad_epochs, "best_val": best_val,
                    "best_parts": best.state_dict(), "history": history, "elapsed_s": elapsed,
                })
                write_history(out / "history.csv", history)
            if timed_out:
                stopped = "max_minutes"
                break
            if cfg.patience and bad_epochs >= cfg.patience:
                stopped = "early_stopping"
                break
    finally:
        bar.close()
    return TrainResult(out, model_path, epoch, step, best_val, stopped, history)
