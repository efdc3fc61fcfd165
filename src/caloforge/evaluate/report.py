"""``report.md``: the metrics table, the separation-power summary and the embedded plots."""

from __future__ import annotations

from pathlib import Path


def _fmt(value, scale: float = 1.0, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value * scale:.{digits}f}"


def separation_summary(entries: list[tuple[str, str, float]]) -> dict[str, dict]:
    """Per feature family from ``(name, family, separation power)`` entries: count, mean, max and
    the feature with the max, in first-seen family order."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for name, family, value in entries:
        groups.setdefault(family, []).append((name, value))
    out = {}
    for family, items in groups.items():
        worst = max(items, key=lambda kv: kv[1])
        out[family] = {"n": len(items), "mean": sum(v for _, v in items) / len(items), "max": worst[1],
                       "max_feature": worst[0]}
    return out


def _fmt_auc(metrics: dict, level: str) -> str:
    """``mean +- std (R runs)`` of a classifier AUC, or ``-`` when it was not computed."""
    result = metrics.get(f"classifier_{level}")
    if not result:
        return _fmt(metrics.get(f"auc_{level}"))
    return f"{result['auc']:.3f} +- {result['auc_std']:.3f} ({len(result['aucs'])} runs)"


def write_report(path: Path, metrics: dict, timings: dict[str, float], plot_files: list[str]) -> Path:
    """Write the markdown report; ``plot_files`` are PNG paths relative to the report's folder."""
    lines = [
        "# caloforge evaluation report",
        "",
        f"- generated: `{metrics['generated']}` ({metrics['n_generated']} showers)",
        f"- reference: `{metrics['reference']}` ({metrics['n_reference']} showers)",
        f"- geometry: {metrics['geometry']}, cell threshold {metrics['threshold_mev']:g} MeV applied to both",
        f"- caloforge {metrics['caloforge_version']}, seed {metrics['seed']}, metrics: {', '.join(metrics['metrics'])}",
        "",
        "## Summary",
        "",
        "| metric | value | meaning |",
        "| --- | --- | --- |",
        f"| AUC low-level | {_fmt_auc(metrics, 'low')} | classifier on voxels (mean +- spread of the runs); "
        "0.5 = indistinguishable |",
        f"| AUC high-level | {_fmt_auc(metrics, 'high')} | classifier on high-level features |",
        f"| JSD low-level | {_fmt(metrics['jsd_low'])} | calibrated classifier JSD / ln 2; 0 = indistinguishable |",
        f"| JSD high-level | {_fmt(metrics['jsd_high'])} | |",
        f"| FPD x 1e3 | {_fmt(metrics['fpd'], 1e3, 3)} +- {_fmt(metrics['fpd_err'], 1e3, 3)} "
        "| Frechet physics distance |",
        f"| KPD x 1e3 | {_fmt(metrics['kpd'], 1e3, 4)} +- {_fmt(metrics['kpd_err'], 1e3, 4)} "
        "| kernel physics distance |",
        "",
    ]
    if metrics.get("separation_power_summary"):
        lines += ["## Separation power by feature family", "",
                  "| family | features | mean | max | worst feature |", "| --- | --- | --- | --- | --- |"]
        for family, s in metrics["separation_power_summary"].items():
            lines.append(f"| {family} | {s['n']} | {s['mean']:.5f} | {s['max']:.5f} | {s['max_feature']} |")
        lines.append("")
    if metrics.get("paired"):
        p = metrics["paired"]
        lines += ["## Paired comparison (concordance correlation coefficient)", "",
                  "| quantity | CCC |", "| --- | --- |",
                  f"| voxel energies (pooled) | {p['ccc_voxels']:.5f} |",
                  f"| per-voxel CCC, median over hit voxels | {p['ccc_voxels_median']:.5f} |",
                  f"| layer energies (pooled) | {p['ccc_layers']:.5f} |",
                  f"| total energy | {p['ccc_e_total']:.5f} |", ""]
    if timings:
        lines += ["## Run time", "", "| step | seconds |", "| --- | --- |"]
        lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()]
        lines.append("")
    if plot_files:
        lines += ["## Plots", "", "PDF versions lie beside the PNG files.", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in plot_files]
        lines.append("")
    path.write_text("\n".join(lines))
    return path
