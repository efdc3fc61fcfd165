"""Training the cold-diffusion refiner (:mod:`caloforge.hybrid.bridge`): ``caloforge train-refiner``.

Geant4 showers come from a CaloChallenge file; FastSim showers are drawn on the fly at the same
incident energies (a fresh, independent FastSim shower for every Geant4 shower at every step:
the pairs are not matched event by event). Both are encoded with the base diffusion model's
fitted transforms. The output folder gets ``model.pt`` (EMA weights of the best validation
loss), ``history.csv`` and ``config.yaml``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from caloforge.config import load_config, save_config, to_dict
from caloforge.diffusion.model import EncodedBatch, ShowerDiffusionModel
from caloforge.errors import CaloforgeError, ConfigError
from caloforge.generation.models import load_model
from caloforge.hybrid.bridge import BridgeConfig, ShowerBridge, save_bridge_file
from caloforge.io import check_output_path, read_showers
from caloforge.train.checkpoint import write_history
from caloforge.train.loop import learning_rate
from caloforge.train.ema import EMA

__all__ = ["BridgeTrainConfig", "BridgeTrainResult", "load_bridge_train_config", "train_bridge"]


@dataclass
class BridgeTrainConfig:
    """``caloforge train-refiner`` settings. ``bridge``: the refiner's architecture;
    ``steps`` / ``max_minutes``: stop after whichever comes first; ``batch_size`` showers per step;
    AdamW ``lr`` with ``warmup_steps`` of linear warm-up, then cosine decay to ``lr_min`` at
    ``steps``; ``ema_decay`` of the saved weights; ``val_every`` steps a validation loss on
    ``val_fraction`` of the data (at most ``val_showers``; fixed t, noise and FastSim showers);
    ``fastsim_params``: FastSim parameter file (None: the shipped fit of the base model's
    detector); ``particle``; ``threads``: torch CPU threads; ``init_from_base``: start from the
    base model's voxel-network weights when the architectures match (faster convergence)."""

    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    steps: int = 5000
    max_minutes: float | None = None
    batch_size: int = 32
    lr: float = 1e-3
    lr_min: float = 5e-5
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    val_every: int = 200
    val_fraction: float = 0.1
    val_showers: int = 256
    fastsim_params: str | None = None
    particle: str = "e-"
    threads: int | None = 1
    init_from_base: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.steps > 0, "steps must be > 0"),
            (self.max_minutes is None or self.max_minutes > 0, "max_minutes must be > 0"),
            (self.batch_size > 0, "batch_size must be > 0"),
            (self.lr > 0 and self.lr_min >= 0, "lr must be > 0 and lr_min >= 0"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (self.val_every > 0 and self.val_showers > 0, "val_every and val_showers must be > 0"),
            (0 < self.val_fraction < 1, "val_fraction must be in (0, 1)"),
            (self.threads is None or self.threads > 0, "threads must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"refiner training: {message}")


def load_bridge_train_config(path: str | Path) -> BridgeTrainConfig:
    """Load and check a refiner-training YAML file (unknown keys are errors)."""
    return load_config(BridgeTrainConfig, path)


@dataclass
class BridgeTrainResult:
    """``model_path``; ``steps`` done; ``best_val_loss``; ``stopped``: "steps" or "max_minutes"; ``history``."""

    model_path: Path
    steps: int
    best_val_loss: float
    stopped: str
    history: list[dict[str, float]]


class _FastSimLatents:
    """FastSim showers at given energies, encoded with the base model's transforms."""

    def __init__(self, base: ShowerDiffusionModel, params: str | None, particle: str) -> None:
        from caloforge.fastsim import FastSim, get_detector, resolve_params

        try:
            detector = get_detector(base.geometry.name)
        except CaloforgeError as exc:
            raise CaloforgeError(f"no FastSim detector for the base model's geometry {base.geometry.name!r}: {exc}") \
                from None
        self.base = base
        self.sim = FastSim(detector, resolve_params(params, detector, particle))

    def __call__(self, energies_mev: torch.Tensor, seed: int) -> torch.Tensor:
        e = energies_mev.reshape(-1, 1).float()
        showers = torch.from_numpy(self.sim.sample(e.numpy().reshape(-1), seed=seed))
        return self.base.voxel_pre.transform(e, showers)


def _val_loss(bridge: ShowerBridge, val: EncodedBatch, z_fast: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
              cond: torch.Tensor, batch: int = 128) -> float:
    total = 0.0
    with torch.no_grad():
        for lo in range(0, t.shape[0], batch):
            sl = slice(lo, lo + batch)
            total += float(bridge.loss(val.voxels[sl], z_fast[sl], t[sl], noise[sl], cond[sl]).sum())
    return total / t.shape[0]


def train_bridge(config: BridgeTrainConfig, data: str | Path, out_dir: str | Path, *,
                 base: str | Path = "ds2-full", seed: int = 0, overwrite: bool = False,
                 progress: bool = True) -> BridgeTrainResult:
    """Train a refiner on the Geant4 showers of ``data`` over the diffusion model ``base``; write ``out_dir``."""
    out = Path(out_dir)
    model_path = check_output_path(out / "model.pt", overwrite)
    loaded = load_model(base)
    net = loaded.model
    if not net.has_layer_model:
        raise CaloforgeError(f"base model {base}: the refiner needs a model with a layer-energy model (norm: layer)")
    energies, showers = read_showers(data)
    if len(energies) < 10:
        raise CaloforgeError(f"{data}: {len(energies)} showers; the refiner needs at least 10 (some for validation)")
    if showers.shape[1] != net.geometry.n_voxels:
        raise CaloforgeError(f"{data}: showers have {showers.shape[1]} voxels, the base model's geometry "
                             f"{net.geometry.name} has {net.geometry.n_voxels}")
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _run(config, loaded.source, net, torch.from_numpy(energies).reshape(-1, 1).float(),
                    torch.from_numpy(showers), Path(data), out, model_path, seed, progress)
    finally:
        torch.set_num_threads(old_threads)


def _run(cfg: BridgeTrainConfig, base_source: str, net: ShowerDiffusionModel, energies: torch.Tensor,
         showers: torch.Tensor, data: Path, out: Path, model_path: Path, seed: int,
         progress: bool) -> BridgeTrainResult:
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(energies.shape[0], generator=gen)
    n_val = min(cfg.val_showers, max(1, int(round(cfg.val_fraction * energies.shape[0]))))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    train_set = net.encode(energies[train_idx], showers[train_idx])
    val_set = net.encode(energies[val_idx], showers[val_idx])
    train_e, val_e = energies[train_idx], energies[val_idx]
    del showers
    fastsim = _FastSimLatents(net, cfg.fastsim_params, cfg.particle)
    val_fast = fastsim(val_e, seed=int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]))
    val_gen = torch.Generator().manual_seed(seed + 2)
    val_t = torch.rand(n_val, generator=val_gen)
    val_noise = torch.randn(val_set.voxels.shape, generator=val_gen)
    val_cond = net.voxel_condition(val_set.energy_cond, val_set.layers)

    torch.manual_seed(seed)
    bridge = ShowerBridge(net, cfg.bridge)
    initialised = cfg.init_from_base and bridge.init_from_base()
    opt = torch.optim.AdamW(bridge.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMA(bridge, cfg.ema_decay)
    out.mkdir(parents=True, exist_ok=True)
    save_config({"train_refiner": to_dict(cfg), "base": base_source, "data": str(data), "seed": seed,
                 "n_train": int(train_idx.numel()), "n_val": n_val, "initialised_from_base": bool(initialised)},
                out / "config.yaml")
    history: list[dict[str, float]] = []
    best_val, stopped, step, running = float("inf"), "steps", 0, []
    start = time.perf_counter()
    n_train = train_idx.numel()
    bar = tqdm(total=cfg.steps, disable=not progress, desc="train-refiner", unit="step", dynamic_ncols=True)
    try:
        while step < cfg.steps:
            bridge.train()
            idx = torch.randint(n_train, (cfg.batch_size,), generator=gen)
            batch = train_set.subset(idx)
            z_fast = fastsim(train_e[idx], seed=int(np.random.SeedSequence([seed, 2, step]).generate_state(1)[0]))
            t = torch.rand(cfg.batch_size, generator=gen)
            noise = torch.randn(batch.voxels.shape, generator=gen)
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, cfg.steps, cfg)  # warm-up + cosine, as `train`
            loss = bridge.loss(batch.voxels, z_fast, t, noise, net.voxel_condition(batch.energy_cond, batch.layers))
            loss = loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(bridge.net.parameters(), cfg.grad_clip)
            opt.step()
            ema.update(bridge)
            step += 1
            running.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}")
            timed_out = cfg.max_minutes is not None and time.perf_counter() - start > 60.0 * cfg.max_minutes
            if step % cfg.val_every == 0 or step == cfg.steps or timed_out:
                val = _val_loss(ema.model, val_set, val_fast, val_t, val_noise, val_cond)
                elapsed = time.perf_counter() - start
                history.append({"step": step, "train_loss": float(np.mean(running)), "val_loss": val,
                                "lr": float(opt.param_groups[0]["lr"]), "elapsed_s": round(elapsed, 1)})
                running = []
                bar.write(f"step {step}: train {history[-1]['train_loss']:.4f} | val {val:.4f} | {elapsed / 60:.1f} min")
                if val < best_val:
                    best_val = val
                    save_bridge_file(model_path, ema.model, {
                        "step": step, "val_loss": val, "seed": seed, "base": base_source, "data": data.name,
                        "n_train": int(n_train), "n_val": n_val, "elapsed_s": round(elapsed, 1),
                        "torch_version": str(torch.__version__), "train_config": to_dict(cfg),
                    })
                write_history(out / "history.csv", history)
            if timed_out:
                stopped = "max_minutes"
                break
    finally:
        bar.close()
    return BridgeTrainResult(model_path, step, best_val, stopped, history)
