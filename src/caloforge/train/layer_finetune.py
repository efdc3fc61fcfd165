"""Continue training the layer-energy model of a trained generator on its own.

The layer-energy model (LayerDiffusion, arXiv:2308.03876) and the voxel model are independent
given the data: the voxel model is conditioned on the *true* layer-energy vector during
training. The small layer MLP needs many more updates than the voxel U-Net gets in a CPU
budget, and each of its steps costs milliseconds, so it is worth training it further alone.
The voxel model and all preprocessing constants are kept unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from caloforge.config import to_dict
from caloforge.diffusion.schedules import sample_training_sigmas
from caloforge.errors import CaloforgeError
from caloforge.io import read_showers, validate_file
from caloforge.train.checkpoint import load_model_file, save_model_file
from caloforge.train.config import TrainConfig
from caloforge.train.ema import EMA

__all__ = ["LayerFinetuneResult", "finetune_layer_model"]


@dataclass
class LayerFinetuneResult:
    """``model_path`` written; ``val_loss_before``/``val_loss_after``: layer-model validation loss (EMA)."""

    model_path: Path
    steps: int
    val_loss_before: float
    val_loss_after: float
    wall_s: float


def _layer_data(model, path: Path, limit: int | None):
    validate_file(path, model.geometry.n_voxels, model.geometry.name)
    energies, showers = (torch.from_numpy(a) for a in read_showers(path, max_showers=limit))
    with torch.no_grad():
        layers = model.layer_pre.transform(energies, model.voxel_pre.layer_energies(showers))
        return model.energy_scaler.transform(energies), layers


@torch.no_grad()
def _val_loss(denoiser, cond, y, cfg: TrainConfig, seed: int) -> float:
    gen = torch.Generator().manual_seed(seed + 7919)
    sigma = sample_training_sigmas(y.shape[0], cfg.sigma_sampling, p_mean=cfg.p_mean, p_std=cfg.p_std, generator=gen)
    return float(denoiser.loss(y, sigma, cond, torch.randn(y.shape, generator=gen)).mean())


def finetune_layer_model(
    model_in: str | Path, data: str | Path, out: str | Path, *, config: TrainConfig, steps: int = 3000,
    val: str | Path | None = None, seed: int = 0, progress: bool = True,
) -> LayerFinetuneResult:
    """Train the layer-energy model of ``model_in`` for ``steps`` more AdamW steps on ``data``.

    Uses ``config``'s ``layer_batch_size``, ``lr``/``lr_min`` (cosine decay over ``steps``),
    ``weight_decay``, ``ema_decay``, noise-level distribution and ``val_fraction`` split (or
    ``val``); writes a new model file ``out`` keeping the better of the old and new layer model
    by validation loss.
    """
    if steps < 1:
        raise CaloforgeError(f"steps must be >= 1, got {steps}")
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _finetune(Path(model_in), Path(data), Path(out), config, steps, val, seed, progress)
    finally:
        torch.set_num_threads(old_threads)


def _finetune(model_in: Path, data: Path, out: Path, config: TrainConfig, steps: int, val: str | Path | None,
              seed: int, progress: bool) -> LayerFinetuneResult:
    start = time.perf_counter()
    model, meta = load_model_file(model_in)
    if not model.has_layer_model:
        raise CaloforgeError(f"{model_in}: model has no layer-energy model (norm: incident)")
    cond, y = _layer_data(model, data, config.max_train_showers)
    split = torch.Generator().manual_seed(seed)
    if val is not None:
        val_cond, val_y = _layer_data(model, Path(val), None)
    else:
        perm = torch.randperm(y.shape[0], generator=split)
        n_val = max(1, int(round(config.val_fraction * y.shape[0])))
        val_cond, val_y, cond, y = cond[perm[:n_val]], y[perm[:n_val]], cond[perm[n_val:]], y[perm[n_val:]]
    denoiser = model.layer_denoiser
    denoiser.train()
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(denoiser.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema = EMA(denoiser, config.ema_decay)
    before = _val_loss(ema.model, val_cond, val_y, config, seed)
    gen = torch.Generator().manual_seed(seed + 2)
    n, batch = y.shape[0], config.layer_batch_size
    for step in tqdm(range(steps), disable=not progress, desc="layer model", unit="step"):
        lr = config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + math.cos(math.pi * step / steps))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(n, (batch,), generator=gen)
        sigma = sample_training_sigmas(batch, config.sigma_sampling, p_mean=config.p_mean, p_std=config.p_std,
                                       generator=gen)
        loss = denoiser.loss(y[idx], sigma, cond[idx], torch.randn((batch, y.shape[1]), generator=gen)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(denoiser.parameters(), config.grad_clip)
        opt.step()
        ema.update(denoiser)
    after = _val_loss(ema.model, val_cond, val_y, config, seed)
    if after < before:
        denoiser.load_state_dict(ema.model.state_dict())
    else:  # keep the original weights (loaded EMA) if fine-tuning did not help
        model, _ = load_model_file(model_in)
    wall = time.perf_counter() - start
    training = dict(meta.get("training", {}))
    training["layer_finetune"] = {"steps": steps, "val_layer_loss_before": before, "val_layer_loss_after": after,
                                  "kept": "finetuned" if after < before else "original", "data": data.name,
                                  "seed": seed, "wall_s": round(wall, 1), "config": to_dict(config)}
    path = save_model_file(out, model.eval(), training)
    return LayerFinetuneResult(path, steps, before, after, wall)
