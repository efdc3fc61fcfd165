"""Evaluation plots (HEP style via mplhep), drawn on bare :class:`matplotlib.figure.Figure` objects
(Agg for PNG, the PDF backend for PDF; pyplot and its global state are never used).

- feature histograms: both normalised distributions, a generated/reference ratio panel with
  statistical errors, and the separation power in the legend; one grid figure per feature family
  (one panel per layer) plus, optionally, one figure per feature;
- average shower per layer: reference, generated and their difference, in (alpha, r) polar bins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import matplotlib
import mplhep
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpecFromSubplotSpec
from matplotlib.ticker import FixedLocator, LogLocator, MaxNLocator, NullLocator

from caloforge.evaluate.histograms import FeatureHistogram
from caloforge.geometry import CylindricalReadout

REFERENCE_STYLE = {"color": "0.35", "label": "Reference"}
GENERATED_COLOR = "#d62728"


def _style():
    # CMS style; "custom" mathtext looks for a 'cursive' font that most machines lack (log-axis labels)
    return matplotlib.style.context([mplhep.style.CMS, {"mathtext.fontset": "dejavusans"}])


def save_figure(fig: Figure, stem: Path, dpi: int = 100) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``; return both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=dpi)
    fig.savefig(paths[1], metadata={"CreationDate": None})  # reproducible bytes
    return paths


def _format_s(value: float) -> str:
    return f"{value:.4f}" if value >= 1e-3 or value == 0 else f"{value:.1e}"


def _normalised(hist_counts: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Density (unit area over in-range entries) and its Poisson error."""
    total = hist_counts.sum()
    if total == 0:
        return np.zeros_like(widths), np.zeros_like(widths)
    return hist_counts / total / widths, np.sqrt(hist_counts) / total / widths


def draw_feature(ax_main, ax_ratio, hist: FeatureHistogram, compact: bool = False) -> None:
    """Reference (filled) and generated (step + errors) densities on ``ax_main``; ratio on ``ax_ratio``."""
    edges = hist.edges
    widths = np.diff(edges)
    ref, ref_err = _normalised(hist.reference.astype(np.float64), widths)
    gen, gen_err = _normalised(hist.generated.astype(np.float64), widths)
    centres = 0.5 * (edges[1:] + edges[:-1]) if not hist.log_x else np.sqrt(edges[1:] * edges[:-1])
    # plain stairs + error bars: the same picture as mplhep.histplot, cheaper in the 90-panel grids
    ax_main.stairs(ref, edges, fill=True, alpha=0.35, color=REFERENCE_STYLE["color"], label=REFERENCE_STYLE["label"])
    ax_main.stairs(gen, edges, color=GENERATED_COLOR, lw=1.5,
                   label=f"Generated (S = {_format_s(hist.separation_power)})")
    ax_main.errorbar(centres, gen, yerr=gen_err, fmt="none", ecolor=GENERATED_COLOR, elinewidth=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref > 0, gen / ref, np.nan)
        rel_gen = np.where(gen > 0, (gen_err / gen) ** 2, 0.0)
        rel_ref = np.where(ref > 0, (ref_err / ref) ** 2, 0.0)
        ratio_err = ratio * np.sqrt(rel_gen + rel_ref)
    ax_ratio.axhline(1.0, color="0.35", lw=1, ls="--")
    ax_ratio.errorbar(centres, ratio, yerr=ratio_err, fmt="o", ms=2 if compact else 4, color=GENERATED_COLOR,
                      elinewidth=1)
    ax_ratio.set_ylim(0.5, 1.5)
    positive = np.concatenate([ref[ref > 0], gen[gen > 0]])
    if positive.size and hist.family not in ("E_ratio", "sparsity"):
        ax_main.set_yscale("log")
        ax_main.set_ylim(positive.min() * 0.5, positive.max() * (30 if compact else 50))
    elif positive.size:
        ax_main.set_ylim(0, positive.max() * 1.4)
    for ax in (ax_main, ax_ratio):
        ax.set_xlim(edges[0], edges[-1])
        if hist.log_x:
            ax.set_xscale("log")
    ax_main.tick_params(labelbottom=False)
    ax_main.legend(loc="upper right", fontsize=7 if compact else 18, frameon=False,
                   title=None if not compact else hist.name, title_fontsize=7)
    if compact:  # few ticks: tick creation dominates drawing time of the 90-axes grids
        for ax in (ax_main, ax_ratio):
            ax.xaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_locator(LogLocator(numticks=4) if hist.log_x else MaxNLocator(4))
        ax_main.yaxis.set_major_locator(LogLocator(numticks=4) if ax_main.get_yscale() == "log" else MaxNLocator(4))
        ax_ratio.yaxis.set_major_locator(FixedLocator([0.5, 1.0, 1.5]))
    ax_ratio.set_xlabel(hist.xlabel, fontsize=8 if compact else None)
    ax_ratio.set_ylabel("Gen./Ref.", fontsize=8 if compact else None)
    if not compact:
        ax_main.set_ylabel("normalised entries")
        ax_main.set_title(hist.name, fontsize=18)


def feature_figure(hist: FeatureHistogram) -> Figure:
    """One feature: main panel and ratio panel."""
    with _style():
        fig = Figure(figsize=(9, 9), layout="constrained")
        gs = fig.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.0)
        ax_main = fig.add_subplot(gs[0])
        ax_ratio = fig.add_subplot(gs[1], sharex=ax_main)
        draw_feature(ax_main, ax_ratio, hist)
    return fig


def family_figure(hists: list[FeatureHistogram], title: str, n_cols: int = 9) -> Figure:
    """Grid of per-layer panels (each with its ratio panel) for one feature family."""
    n_rows = int(np.ceil(len(hists) / n_cols))
    cols = min(n_cols, len(hists))
    with _style(), matplotlib.rc_context({"font.size": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
                                          "axes.labelsize": 8, "xtick.major.size": 3, "ytick.major.size": 3,
                                          "xtick.minor.visible": False, "ytick.minor.visible": False}):
        fig = Figure(figsize=(3.0 * cols, 3.0 * n_rows + 0.6))
        outer = fig.add_gridspec(n_rows, cols, left=0.03, right=0.99, bottom=0.04, top=1 - 0.5 / (3.0 * n_rows + 0.6),
                                 wspace=0.35, hspace=0.35)
        for i, hist in enumerate(hists):
            inner = GridSpecFromSubplotSpec(2, 1, subplot_spec=outer[i // cols, i % cols], height_ratios=(3, 1),
                                            hspace=0.0)
            ax_main = fig.add_subplot(inner[0])
            ax_ratio = fig.add_subplot(inner[1], sharex=ax_main)
            draw_feature(ax_main, ax_ratio, hist, compact=True)
        fig.suptitle(title, fontsize=14)
    return fig


def average_shower_figures(reference_mean: np.ndarray, generated_mean: np.ndarray, geometry: CylindricalReadout,
                           layers_per_page: int = 9) -> Iterable[tuple[str, Figure]]:
    """Yield ``(page name, figure)``: per layer the average reference and generated shower
    (log colour scale shared by both, MeV) and their difference generated - reference (MeV), in
    polar (alpha, r) bins with one ring per radial bin. ``*_mean``: (V,) mean voxel energies, MeV."""
    grid_ref = geometry.to_grid(np.asarray(reference_mean, dtype=np.float64)[None])[0]
    grid_gen = geometry.to_grid(np.asarray(generated_mean, dtype=np.float64)[None])[0]
    layers = [l for l in range(geometry.n_layers) if geometry.layers[l].n_voxels > 0]
    for start in range(0, len(layers), layers_per_page):
        page = layers[start:start + layers_per_page]
        with _style(), matplotlib.rc_context({"font.size": 9, "xtick.labelsize": 6, "ytick.labelsize": 6}):
            fig = Figure(figsize=(2.6 * len(page), 8.0))
            fig.subplots_adjust(left=0.01, right=0.95, bottom=0.02, top=0.95, wspace=0.45, hspace=0.25)
            for col, layer in enumerate(page):
                binning = geometry.layers[layer]
                # each alpha bin drawn as several sectors so rings look round (one bin = a full ring);
                # radius = radial bin number, so irregular (dataset 1) binnings stay readable
                split = max(1, int(np.ceil(32 / binning.n_alpha)))
                theta = np.linspace(-np.pi, np.pi, binning.n_alpha * split + 1)
                r = np.arange(binning.n_r + 1)
                ref = np.repeat(grid_ref[layer, :binning.n_alpha, :binning.n_r], split, axis=0)
                gen = np.repeat(grid_gen[layer, :binning.n_alpha, :binning.n_r], split, axis=0)
                vmax = max(float(ref.max()), float(gen.max()), 1e-12)
                norm = LogNorm(vmin=vmax * 1e-4, vmax=vmax)
                diff = gen - ref
                dmax = max(float(np.abs(diff).max()), 1e-12)
                rows = (("reference", np.clip(ref, vmax * 1e-4, None), norm, "viridis"),
                        ("generated", np.clip(gen, vmax * 1e-4, None), norm, "viridis"),
                        ("gen. - ref.", diff, Normalize(-dmax, dmax), "RdBu_r"))
                for row, (label, image, nrm, cmap) in enumerate(rows):
                    ax = fig.add_subplot(3, len(page), row * len(page) + col + 1, projection="polar")
                    mesh = ax.pcolormesh(theta, r, image.T, norm=nrm, cmap=cmap, shading="flat")
                    ax.set_xticks([])  # no angular/radial ticks: they dominate the drawing time
                    ax.set_yticks([])
                    ax.xaxis.set_minor_locator(NullLocator())
                    ax.yaxis.set_minor_locator(NullLocator())
                    ax.grid(False)
                    ax.set_title(f"layer {layer} {label}", fontsize=8)
                    if row > 0:
                        cbar = fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04)
                        cbar.ax.tick_params(labelsize=6)
                        cbar.ax.minorticks_off()
                        cbar.set_label("MeV", fontsize=7)
        yield f"average_shower_layers_{page[0]:02d}-{page[-1]:02d}", fig
