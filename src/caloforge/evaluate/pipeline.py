"""``evaluate``: one call from two shower samples to ``metrics.json``, plots and ``report.md``.

Order of work (CaloChallenge, arXiv:2410.21611): apply the cell threshold to both samples, then
high-level features, histograms + separation powers, the low- and high-level classifier tests and
FPD/KPD on the high-level classifier input, and, for paired samples, concordance correlations.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from caloforge import __version__
from caloforge.config import save_config, to_dict
from caloforge.errors import CaloforgeError, OutputExistsError
from caloforge.evaluate.classifier import classifier_test, high_level_input, low_level_input
from caloforge.evaluate.config import METRICS, EvaluateConfig
from caloforge.evaluate.histograms import FAMILIES, FeatureHistogram, feature_histograms, voxel_histogram
from caloforge.evaluate.paired import paired_metrics
from caloforge.evaluate.physics_distances import fpd, kpd
from caloforge.evaluate.report import separation_summary, write_report
from caloforge.evaluate.samples import Sample, check_paired, load_sample, sample_from_arrays, thresholded
from caloforge.features import ShowerFeatures, compute_features
from caloforge.geometry import CylindricalReadout, cell_threshold_mev, get_geometry


def _as_sample(obj: Any, geometry: CylindricalReadout, max_showers: int | None, label: str) -> Sample:
    if isinstance(obj, Sample):
        sample = sample_from_arrays(obj.energies, obj.showers, geometry, obj.name)
    elif isinstance(obj, (str, os.PathLike)):
        return load_sample(obj, geometry, max_showers)
    elif isinstance(obj, tuple) and len(obj) == 2:
        sample = sample_from_arrays(obj[0], obj[1], geometry, label)
    else:
        raise CaloforgeError(
            f"{label}: expected a file path, a Sample or (energies, showers), got {type(obj).__name__}")
    if max_showers is not None:
        sample = Sample(sample.energies[:max_showers], sample.showers[:max_showers], sample.name)
    return sample


def _features(sample: Sample, geometry: CylindricalReadout, chunk: int = 2048) -> ShowerFeatures:
    """Features of an already thresholded sample, chunk by chunk (bounded float64 temporaries)."""
    parts = [compute_features(sample.energies[i:i + chunk], sample.showers[i:i + chunk], geometry, threshold_mev=0.0)
             for i in range(0, len(sample), chunk)]
    return ShowerFeatures.concatenate(parts)


def _metric_seed(seed: int, metric: str) -> int:
    """Independent, reproducible seed per metric (unaffected by which other metrics run)."""
    return int(np.random.SeedSequence([seed, METRICS.index(metric)]).generate_state(1)[0])


def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@contextmanager
def _cpu_threads(n: int) -> Iterator[None]:
    """Limit torch and BLAS/OpenMP to ``n`` threads (0: leave the libraries' defaults)."""
    if n <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise CaloforgeError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out_dir}: already exists (use --overwrite to replace it)")
        if not (out_dir / "metrics.json").is_file():
            raise CaloforgeError(f"{out_dir}: not an evaluation folder (no metrics.json); refusing to replace it")


@contextmanager
def _atomic_dir(out_dir: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``out_dir`` in one rename."""
    _check_out_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir()  # unlike tempfile.mkdtemp, honours the umask (the folder stays readable to others)
    try:
        yield tmp
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:12]}.old"
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _family_title(family: str) -> str:
    return {name: label for name, _, label in FAMILIES}.get(family, family)


def _write_plots(folder: Path, hists: list[FeatureHistogram], voxel: FeatureHistogram | None,
                 ref: Sample, gen: Sample, geometry: CylindricalReadout, level: str, progress: bool) -> list[str]:
    from tqdm.auto import tqdm

    from caloforge.evaluate import plots

    written: list[str] = []
    jobs = []
    singles = [h for h in hists if h.family == "E_ratio"] + ([voxel] if voxel is not None else [])
    for hist in singles:
        jobs.append((f"plots/{hist.name}", lambda h=hist: plots.feature_figure(h)))
    families = []
    for h in hists:
        if h.family != "E_ratio" and h.family not in families:
            families.append(h.family)
    for family in families:
        members = [h for h in hists if h.family == family]
        jobs.append((f"plots/{family}", lambda m=members, f=family: plots.family_figure(m, f"{f}: {_family_title(f)}")))
    if level == "all":
        for hist in hists:
            if hist.family != "E_ratio":
                jobs.append((f"plots/features/{hist.name}", lambda h=hist: plots.feature_figure(h)))
    for stem, make in tqdm(jobs, desc="plots", unit="fig", disable=not progress, leave=False):
        fig = make()
        plots.save_figure(fig, folder / stem)
        if "/features/" not in stem:
            written.append(stem + ".png")
    for name, fig in plots.average_shower_figures(ref.showers.mean(axis=0, dtype=np.float64),
                                                  gen.showers.mean(axis=0, dtype=np.float64), geometry):
        plots.save_figure(fig, folder / "plots" / name)
        written.append(f"plots/{name}.png")
    return written


def _compute(config: EvaluateConfig, gen: Sample, ref: Sample, geo: CylindricalReadout, threshold: float,
             timer: _Timer, progress: bool) -> tuple[dict, list[FeatureHistogram], FeatureHistogram | None]:
    """All requested metrics of thresholded samples: (metrics dict, feature histograms, voxel histogram)."""
    wanted = set(config.metrics)
    metrics: dict[str, Any] = {
        "caloforge_version": __version__, "geometry": geo.name, "generated": gen.name, "reference": ref.name,
        "n_generated": len(gen), "n_reference": len(ref), "threshold_mev": threshold, "seed": config.seed,
        "metrics": list(config.metrics) + (["paired"] if config.paired else []),
        "auc_low": None, "auc_high": None, "jsd_low": None, "jsd_high": None,
        "fpd": None, "fpd_err": None, "kpd": None, "kpd_err": None,
        "separation_power": {}, "separation_power_summary": {},
    }
    feats_ref = feats_gen = None
    if wanted & {"hist", "cls-high", "fpd", "kpd"}:
        with timer("features"):
            feats_ref, feats_gen = _features(ref, geo), _features(gen, geo)
    hists: list[FeatureHistogram] = []
    voxel = None
    if "hist" in wanted:
        with timer("hist"):
            hists = feature_histograms(feats_ref, feats_gen, geo, threshold)
            voxel = voxel_histogram(ref.showers, gen.showers, threshold)
        entries = [(h.name, h.family, h.separation_power) for h in hists + [voxel]]
        metrics["separation_power"] = {name: value for name, _, value in entries}
        metrics["separation_power_summary"] = separation_summary(entries)
    for level in ("low", "high"):
        if f"cls-{level}" not in wanted:
            continue
        with timer(f"cls-{level}"):
            if level == "low":
                x_ref, x_gen = low_level_input(ref.energies, ref.showers), low_level_input(gen.energies, gen.showers)
            else:
                x_ref, x_gen = high_level_input(feats_ref, geo), high_level_input(feats_gen, geo)
            result = classifier_test(x_ref, x_gen, config.classifier, _metric_seed(config.seed, f"cls-{level}"),
                                     progress=progress, desc=f"classifier {level}-level",
                                     standardize=level in config.classifier.standardize)
            del x_ref, x_gen
        metrics[f"auc_{level}"], metrics[f"jsd_{level}"] = result.auc, result.jsd
        metrics[f"classifier_{level}"] = result.as_dict()
    if wanted & {"fpd", "kpd"}:
        hl_ref, hl_gen = high_level_input(feats_ref, geo), high_level_input(feats_gen, geo)
    if "fpd" in wanted:
        with timer("fpd"):
            c = config.fpd
            res = fpd(hl_ref, hl_gen, min_samples=c.min_samples, max_samples=c.max_samples,
                      num_batches=c.num_batches, num_points=c.num_points, seed=_metric_seed(config.seed, "fpd"),
                      progress=progress)
        metrics["fpd"], metrics["fpd_err"], metrics["fpd_details"] = res.value, res.error, res.as_dict()
    if "kpd" in wanted:
        with timer("kpd"):
            c = config.kpd
            res = kpd(hl_ref, hl_gen, num_batches=c.num_batches, batch_size=c.batch_size,
                      seed=_metric_seed(config.seed, "kpd"), progress=progress)
        metrics["kpd"], metrics["kpd_err"], metrics["kpd_details"] = res.value, res.error, res.as_dict()
    if config.paired:
        with timer("paired"):
            metrics["paired"] = paired_metrics(ref.showers, gen.showers, geo)
    return _clean(metrics), hists, voxel


def evaluate(
    generated: Any,
    reference: Any,
    geometry: str | os.PathLike | CylindricalReadout,
    out_dir: str | os.PathLike | None = None,
    *,
    config: EvaluateConfig | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **overrides: Any,
) -> dict:
    """Compare a generated shower sample with a reference one (CaloChallenge metrics).

    ``generated``/``reference``: CaloChallenge HDF5 paths, :class:`Sample` objects or
    ``(energies (N, 1) MeV, showers (N, V) MeV)`` tuples. ``geometry``: preset name, binning XML or
    readout. ``config``: :class:`EvaluateConfig`; keyword ``overrides`` replace its top-level
    fields (e.g. ``metrics=["hist", "fpd"], seed=3``). With ``out_dir`` the folder receives
    ``metrics.json`` (returned as a dict as well), ``timings.json``, ``config.yaml``, ``report.md``
    and ``plots/`` (PNG + PDF), written atomically (the folder appears complete or not at all);
    an existing evaluation folder is only replaced with ``overwrite=True``.
    Raises :class:`CaloforgeError` subclasses for malformed or mismatched inputs.
    """
    config = config or EvaluateConfig()
    if overrides:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(EvaluateConfig)})
        if unknown:
            raise TypeError(f"evaluate() got unknown option(s) {unknown}")
        config = dataclasses.replace(config, **overrides)
    geo = geometry if isinstance(geometry, CylindricalReadout) else get_geometry(geometry)
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        _check_out_dir(out_path, overwrite)  # fail before the expensive part
    timer = _Timer()
    with timer("load"):
        gen = _as_sample(generated, geo, config.max_showers, "generated")
        ref = _as_sample(reference, geo, config.max_showers, "reference")
    threshold = cell_threshold_mev(geo) if config.threshold_mev is None else float(config.threshold_mev)
    gen, ref = thresholded(gen, threshold), thresholded(ref, threshold)
    if config.paired:
        check_paired(gen, ref)
    with _cpu_threads(config.threads):
        metrics, hists, voxel = _compute(config, gen, ref, geo, threshold, timer, progress)
    if out_path is not None:
        with _atomic_dir(out_path, overwrite) as folder:
            plot_files: list[str] = []
            if config.plots != "none":
                with timer("plots"):
                    plot_files = _write_plots(folder, hists, voxel, ref, gen, geo, config.plots, progress)
            (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
            save_config({"inputs": {"generated": gen.name, "reference": ref.name, "geometry": geo.name,
                                    "geometry_description": geo.to_dict()},
                         "evaluate": to_dict(config)}, folder / "config.yaml")
            timings = {k: round(v, 3) for k, v in timer.seconds.items()}
            (folder / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
            write_report(folder / "report.md", metrics, timings, plot_files)
    return metrics
