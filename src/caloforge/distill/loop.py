"""Consistency distillation of a trained caloforge diffusion model (Song et al. arXiv:2303.01469;
as CaloClouds II did for showers, arXiv:2309.05704).

The student is a copy of the teacher (same architecture, same fitted preprocessing and, if the
teacher has one, the same layer-energy model, frozen); only its voxel denoiser is trained, through
the consistency parametrisation of :func:`caloforge.diffusion.solvers.consistency_function`. The
result is an ordinary caloforge model file: ``load_model`` reads it and ``generate_showers(...,
sampler="consistency", steps=1|2|4)`` samples it.

Output folder::

    config.yaml   resolved configuration (+ teacher, data files, seed)
    model.pt      EMA student (self-describing; ``training["distillation"]`` says how it was made)
    last.pt       distillation state after the last validation (``--resume`` continues from it)
    history.csv   per validation: step, training loss, the student's mean squared error vs the
                  teacher's ODE solution from all levels (val_consistency_mse) and from pure
                  noise (val_one_step_mse), and the lateral-shape MMD of its one-step samples
                  against the validation showers (val_shape_mmd, :mod:`caloforge.distill.shape`)

A run may start from an earlier student instead of a copy of the teacher (``student=``, CLI
``--student``): fine-tuning, e.g. with the lateral-shape data term (``shape_weight``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from caloforge import __version__
from caloforge.config import save_config, to_dict
from caloforge.diffusion.model import EncodedBatch, ShowerDiffusionModel
from caloforge.diffusion.schedules import SIGMA_MAX
from caloforge.diffusion.solvers import consistency_function, consistency_sigmas
from caloforge.distill.config import DistillConfig
from caloforge.distill.loss import consistency_loss, distillation_sigmas, draw, heun_step
from caloforge.distill.shape import LateralShape, marginal_mmd
from caloforge.errors import CaloforgeError, InputFileError
from caloforge.generation.models import LoadedModel, load_model
from caloforge.io import read_showers, validate_file
from caloforge.train.checkpoint import (
    MODEL_FORMAT_VERSION,
    read_checkpoint,
    save_checkpoint,
    save_model_file,
    write_history,
)
from caloforge.train.ema import EMA

__all__ = ["DISTILL_STATE_FORMAT", "DistillResult", "OdeProbe", "distill", "is_distilled", "teacher_ode_solution"]

DISTILL_STATE_FORMAT = "caloforge-distill-state"
#: settings that may change when resuming (to extend or cut a run); all others must match
RESUMABLE_CHANGES = ("steps", "max_minutes", "val_every")

#: sampling recommended in a student's file (what ``caloforge generate`` uses unless told otherwise):
#: one consistency step for the voxels; the small layer-energy model keeps a 10-step solver
STUDENT_SAMPLING = {"sampler": "consistency", "steps": 1, "layer_sampler": "dpmpp2m-s20", "layer_steps": 10}


@dataclass
class DistillResult:
    """What a run produced. ``history``: one dict per validation (see ``history.csv``)."""

    out_dir: Path
    model_path: Path
    steps: int
    stopped: str
    history: list[dict[str, float]] = field(default_factory=list)


def is_distilled(meta: dict[str, Any]) -> bool:
    """Whether checkpoint metadata (``LoadedModel.meta``) describe a distilled consistency student."""
    return isinstance(meta.get("training"), dict) and "distillation" in meta["training"]


def _load_data(path: Path, model: ShowerDiffusionModel, limit: int | None) -> EncodedBatch:
    geometry = model.geometry
    info = validate_file(path, geometry.n_voxels, geometry.name)
    if info.n_showers < 2:
        raise InputFileError(f"{path}: needs at least 2 showers to distill on, has {info.n_showers}")
    energies, showers = read_showers(path, max_showers=limit)
    return model.encode(torch.from_numpy(energies), torch.from_numpy(showers))


def _voxel_cond(model: ShowerDiffusionModel, batch: EncodedBatch) -> torch.Tensor:
    return model.voxel_condition(batch.energy_cond, batch.layers)


@dataclass
class OdeProbe:
    """Validation points with the teacher's ODE solution: ``x`` (M, V) noisy inputs at ``sigma``
    (M,), ``cond`` (M, C), ``solution`` (M, V) the teacher's ODE end point at ``sigma_min``."""

    x: torch.Tensor
    sigma: torch.Tensor
    cond: torch.Tensor
    solution: torch.Tensor


@torch.no_grad()
def teacher_ode_solution(teacher: ShowerDiffusionModel, x: torch.Tensor, level: torch.Tensor, cond: torch.Tensor,
                         sigmas: torch.Tensor) -> torch.Tensor:
    """(M, V) end points at ``sigma_min`` of the teacher's probability-flow ODE started from ``x``
    (M, V) at the levels ``sigmas[level]`` (``level`` (M,) long, ``sigmas`` increasing), integrated
    with EDM Heun over the same levels: the exact consistency function of the discretised teacher
    ODE, which a perfect student reproduces (arXiv:2303.01469, Thm. 1)."""
    x, level = x.clone(), level.clone()
    for j in range(len(sigmas) - 1, 0, -1):
        on = level == j
        if on.any():
            n_on = int(on.sum())
            x[on] = heun_step(teacher.voxel_denoiser, x[on], sigmas[j].expand(n_on), sigmas[j - 1].expand(n_on),
                              cond[on])
            level[on] -= 1
    return x


def _probes(teacher: ShowerDiffusionModel, val: EncodedBatch, sigmas: torch.Tensor,
            generator: torch.Generator) -> dict[str, OdeProbe]:
    """``levels``: validation showers noised to the levels 1..N-1 in turn; ``noise``: pure noise at
    ``sigma_max`` (what one-step sampling starts from), same conditions."""
    n, dim = val.voxels.shape
    cond = _voxel_cond(teacher, val)
    level = torch.arange(n) % (len(sigmas) - 1) + 1
    x_levels = val.voxels + sigmas[level].view(-1, 1) * torch.randn(n, dim, generator=generator)
    x_noise = sigmas[-1] * torch.randn(n, dim, generator=generator)
    top = torch.full((n,), len(sigmas) - 1)
    return {
        "levels": OdeProbe(x_levels, sigmas[level], cond, teacher_ode_solution(teacher, x_levels, level, cond, sigmas)),
        "noise": OdeProbe(x_noise, sigmas[top], cond, teacher_ode_solution(teacher, x_noise, top, cond, sigmas)),
    }


@torch.no_grad()
def _validate(student: ShowerDiffusionModel, probes: dict[str, OdeProbe], sigma_min: float,
              shape: "ShapeTerm") -> dict[str, float]:
    """Mean squared error per voxel of the student's consistency function vs the teacher ODE end
    points: ``val_consistency_mse`` over all levels, ``val_one_step_mse`` from pure noise; and
    ``val_shape_mmd``, the lateral-shape MMD of the one-step samples vs the validation showers."""
    sd = student.voxel_denoiser.sigma_data
    out = {}
    for key, name in (("levels", "val_consistency_mse"), ("noise", "val_one_step_mse")):
        p = probes[key]
        f = consistency_function(student.voxel_denoiser, p.x, p.sigma, p.cond, sigma_min=sigma_min, sigma_data=sd)
        out[name] = float((f - p.solution).square().mean())
        if key == "noise":
            out["val_shape_mmd"] = float(shape.loss(f, shape.val_real))
    return out


class ShapeTerm:
    """The shape data term (:mod:`caloforge.distill.shape`) for one run: features of ``families``
    standardised on the training showers; ``val_real``: the validation showers."""

    def __init__(self, model: ShowerDiffusionModel, train: EncodedBatch, val: EncodedBatch,
                 families: tuple[str, ...] = ("radial",)) -> None:
        self.shape = LateralShape(model, families)
        self.shape.fit(train.voxels, self.shape.masks(train.voxels))
        self.val_real = val.voxels

    def loss(self, generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Sum over families of the marginal MMD of ``generated`` vs ``real`` (both (N, V), same conditions)."""
        masks = self.shape.masks(real)
        gen_f, real_f = self.shape.features(generated, masks), self.shape.features(real, masks)
        return sum(marginal_mmd(gen_f[k], real_f[k]) for k in gen_f)


def _save_state(path: Path, state: dict[str, Any]) -> None:
    save_checkpoint({"format": DISTILL_STATE_FORMAT, "format_version": MODEL_FORMAT_VERSION,
                     "caloforge_version": __version__, **state}, path)


def _load_teacher(teacher: str | Path | LoadedModel) -> LoadedModel:
    loaded = teacher if isinstance(teacher, LoadedModel) else load_model(teacher)
    if is_distilled(loaded.meta):
        raise CaloforgeError(f"{loaded.source}: is already a distilled consistency model; distill its teacher instead")
    return loaded


def distill(
    config: DistillConfig, teacher: str | Path | LoadedModel, data: str | Path, out_dir: str | Path, *,
    val: str | Path | None = None, seed: int = 0, resume: bool = False, progress: bool = True,
    student: str | Path | LoadedModel | None = None,
) -> DistillResult:
    """Consistency-distil ``teacher`` (model file, ``"default"`` or a loaded model) on ``data`` into ``out_dir``.

    ``data``/``val``: CaloChallenge HDF5 files of the teacher's geometry, preprocessed with the
    teacher's fitted transforms (``val`` default: the last 10 % of ``data``, at most
    ``val_showers``); ``seed``: data order, noise and level draws; ``resume``: continue from
    ``out_dir/last.pt`` (configuration unchanged except :data:`RESUMABLE_CHANGES`); ``student``:
    start from this distilled student of the same geometry instead of a copy of the teacher
    (fine-tuning; ignored on resume, where last.pt holds the student).
    """
    out = Path(out_dir)
    state_path, model_path = out / "last.pt", out / "model.pt"
    if resume and not state_path.is_file():
        raise CaloforgeError(f"{out}: nothing to resume (no last.pt)")
    if not resume and (state_path.exists() or model_path.exists()):
        raise CaloforgeError(f"{out}: already holds a distillation run (use --resume to continue it, or another --out)")
    state: dict[str, Any] | None = None
    if resume:
        state = read_checkpoint(state_path, DISTILL_STATE_FORMAT)
        changed = sorted(k for k, v in to_dict(config).items()
                         if state["config"].get(k) != v and k not in RESUMABLE_CHANGES)
        if changed or seed != state["seed"]:
            what = f"config keys {changed}" if changed else "seed"
            raise CaloforgeError(f"{out}: cannot resume: {what} differ from the run in last.pt")
    loaded = _load_teacher(teacher)
    init = None if student is None or resume else _load_student(student, loaded)
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _run(config, loaded, Path(data), None if val is None else Path(val), out, seed, state, progress, init)
    finally:
        torch.set_num_threads(old_threads)


def _load_student(student: str | Path | LoadedModel, teacher: LoadedModel) -> LoadedModel:
    loaded = student if isinstance(student, LoadedModel) else load_model(student)
    if not is_distilled(loaded.meta):
        raise CaloforgeError(f"{loaded.source}: --student must be a distilled consistency model (from caloforge distill)")
    if loaded.model.geometry.to_dict() != teacher.model.geometry.to_dict():
        raise CaloforgeError(f"{loaded.source}: --student geometry {loaded.model.geometry.name!r} differs from the "
                             f"teacher's {teacher.model.geometry.name!r}")
    return loaded


def _run(cfg: DistillConfig, loaded: LoadedModel, data: Path, val: Path | None, out: Path, seed: int,
         state: dict | None, progress: bool, init: LoadedModel | None = None) -> DistillResult:
    teacher = loaded.model.eval().requires_grad_(False)
    model_path = out / "model.pt"
    train_set = _load_data(data, teacher, cfg.max_train_showers)
    if val is not None:
        val_set = _load_data(val, teacher, cfg.val_showers)
    else:
        n_val = max(1, min(cfg.val_showers, train_set.voxels.shape[0] // 10))
        keep = torch.arange(train_set.voxels.shape[0] - n_val)
        val_set = train_set.subset(torch.arange(keep.numel(), train_set.voxels.shape[0]))
        train_set = train_set.subset(keep)
    n_train, dim = train_set.voxels.shape
    sigmas = distillation_sigmas(cfg.n_levels, cfg.rho)
    sigma_min = float(sigmas[0])

    student = copy.deepcopy(teacher if init is None else init.model)
    student.requires_grad_(False)
    student.voxel_denoiser.requires_grad_(True)
    student.train()
    target = copy.deepcopy(student).eval().requires_grad_(False)
    ema = EMA(student, cfg.ema_decay)
    params = [p for p in student.voxel_denoiser.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed + 1)
    val_gen = torch.Generator().manual_seed(seed + 7919)
    probes = _probes(teacher, val_set, sigmas, val_gen)
    shape = ShapeTerm(teacher, train_set, val_set, cfg.shape_features)
    history: list[dict[str, float]] = []
    step = cursor = 0
    perm = torch.randperm(n_train, generator=gen)
    elapsed_before = 0.0
    if state is not None:
        student.load_state_dict(state["student"])
        target.load_state_dict(state["target"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        step, history, elapsed_before = state["step"], list(state["history"]), state["elapsed_s"]
        perm, cursor = state["perm"], state["cursor"]
    else:
        out.mkdir(parents=True, exist_ok=True)
    save_config({"distill": to_dict(cfg), "teacher": loaded.source, "data": str(data),
                 "val": None if val is None else str(val), "seed": seed, "n_train": n_train,
                 "n_val": int(val_set.voxels.shape[0]), "student": None if init is None else init.source},
                out / "config.yaml")
    if state is None:
        history.append({"step": 0, "train_loss": float("nan"), **_validate(student, probes, sigma_min, shape),
                        "elapsed_s": 0.0})

    teacher_meta = {k: loaded.meta.get(k) for k in ("caloforge_version", "training")}
    distill_meta = {
        "method": "consistency distillation (Song et al. arXiv:2303.01469)", "teacher": loaded.source,
        "teacher_meta": teacher_meta, "config": to_dict(cfg), "sigma_min": float(sigmas[0]),
        "sigma_max": SIGMA_MAX, "sampler": "consistency", "recommended_steps": [1, 2, 4],
        "init_student": None if init is None else {"source": init.source,
                                                   "distillation": init.meta["training"]["distillation"]},
        "data": {"train": data.name, "n_train": n_train, "val": val.name if val else "last 10 % of train",
                 "n_val": int(val_set.voxels.shape[0])}, "seed": seed,
    }
    start = time.perf_counter()
    deadline = None if cfg.max_minutes is None else cfg.max_minutes * 60.0 - elapsed_before
    stopped = "steps"
    running, count = 0.0, 0
    sd = teacher.voxel_denoiser.sigma_data
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="distill", unit="step", dynamic_ncols=True)
    try:
        while step < cfg.steps:
            if cursor + cfg.batch_size > n_train:
                perm, cursor = torch.randperm(n_train, generator=gen), 0
            idx = perm[cursor:cursor + cfg.batch_size]
            cursor += cfg.batch_size
            batch = train_set.subset(idx)
            choice = draw(idx.numel(), dim, cfg.n_levels, gen)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
            loss = consistency_loss(student.voxel_denoiser, target.voxel_denoiser, teacher.voxel_denoiser,
                                    batch.voxels, _voxel_cond(student, batch), sigmas, choice, loss=cfg.loss,
                                    huber_c=cfg.huber_c, sigma_data=sd).mean()
            if cfg.shape_weight > 0:
                loss = loss + cfg.shape_weight * _shape_loss(student, batch, shape, sigmas, gen, cfg.shape_steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            with torch.no_grad():
                for p_target, p in zip(target.voxel_denoiser.parameters(), student.voxel_denoiser.parameters()):
                    p_target.lerp_(p, 1.0 - cfg.target_decay)
            ema.update(student)
            step += 1
            running += float(loss.detach())
            count += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / count:.4g}")
            timed_out = deadline is not None and time.perf_counter() - start > deadline
            if step % cfg.val_every == 0 or step == cfg.steps or timed_out:
                metrics = _validate(ema.model, probes, sigma_min, shape)
                elapsed = elapsed_before + time.perf_counter() - start
                history.append({"step": step, "train_loss": running / max(count, 1), **metrics,
                                "elapsed_s": round(elapsed, 1)})
                bar.write(f"step {step}: train loss {running / max(count, 1):.4g} | val consistency mse "
                          f"{metrics['val_consistency_mse']:.4g}, one-step mse {metrics['val_one_step_mse']:.4g} | "
                          f"{elapsed / 60:.1f} min")
                running, count = 0.0, 0
                save_model_file(model_path, ema.model, {"sampling": STUDENT_SAMPLING, "distillation": {
                    **distill_meta, "step": step, **metrics,
                    "elapsed_s": round(elapsed, 1), "torch_version": str(torch.__version__)}})
                _save_state(out / "last.pt", {
                    "config": to_dict(cfg), "geometry": teacher.geometry.to_dict(), "seed": seed,
                    "student": student.state_dict(), "target": target.state_dict(), "ema": ema.state_dict(),
                    "optimizer": opt.state_dict(), "generator": gen.get_state(), "step": step,
                    "perm": perm, "cursor": cursor,
                    "history": history, "elapsed_s": elapsed,
                })
                write_history(out / "history.csv", history)
            if timed_out:
                stopped = "max_minutes"
                break
    finally:
        bar.close()
    return DistillResult(out, model_path, step, stopped, history)


def _shape_loss(student: ShowerDiffusionModel, batch: EncodedBatch, shape: ShapeTerm, sigmas: torch.Tensor,
                generator: torch.Generator, shape_steps: tuple[int, ...] = (1,)) -> torch.Tensor:
    """Lateral-shape MMD of the student's samples with the batch's conditions against the batch's
    real showers. The samples are K-step consistency samples (K drawn from ``shape_steps``, levels
    of :func:`~caloforge.diffusion.solvers.consistency_sigmas`) started from pure noise at
    ``sigmas[-1]``; the gradient flows through the last of the K evaluations only."""
    real = batch.voxels
    n, sd, sigma_min = real.shape[0], student.voxel_denoiser.sigma_data, float(sigmas[0])
    cond = _voxel_cond(student, batch)
    k = shape_steps[int(torch.randint(len(shape_steps), (1,), generator=generator))]
    levels = [float(v) for v in consistency_sigmas(k, sigma_min, float(sigmas[-1]))[:-1]]
    x = levels[0] * torch.randn(real.shape, generator=generator)
    for j, level in enumerate(levels):
        if j > 0:
            x = x + (level**2 - sigma_min**2) ** 0.5 * torch.randn(real.shape, generator=generator)
        with torch.set_grad_enabled(j == len(levels) - 1):
            x = consistency_function(student.voxel_denoiser, x, torch.full((n,), level), cond, sigma_min=sigma_min,
                                     sigma_data=sd)
    return shape.loss(x, real)
