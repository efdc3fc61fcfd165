"""The whole caloforge pipeline on a small sample: ``caloforge demo``.

1. Geant4: ``n`` ds2 electrons, 1-100 GeV log-uniform (the ground truth, CPU time per shower kept);
2. the bundled diffusion model generates showers for the same incident energies;
3. the classical FastSim does the same;
4. both are evaluated against Geant4 with the CaloChallenge metrics (histograms + high-level
   classifier), and a summary table of fidelity and speed is printed and written to ``summary.md``.

With a few hundred showers the classifier AUC is noisy (about +-0.03); the numbers to quote come
from ``caloforge evaluate`` on thousands of showers (see docs/).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


from caloforge.config import save_config
from caloforge.errors import OutputExistsError
from caloforge.io import atomic_write_text, read_extra, read_showers, write_showers


@dataclass
class DemoConfig:
    """``n``: Geant4 showers; ``workers``: Geant4 processes; ``sampler``/``steps``: diffusion sampler
    (None: the sampling the bundled model recommends, :attr:`caloforge.generation.LoadedModel.sampling`)."""

    n: int = 300
    seed: int = 0
    workers: int = 2
    sampler: str | None = None
    steps: int | None = None
    batch_size: int = 100


@dataclass
class DemoRow:
    name: str
    seconds_per_shower: float
    auc_high: float | None
    e_ratio_separation: float | None


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def summary_table(rows: list[DemoRow], n: int) -> str:
    geant4 = rows[0].seconds_per_shower
    lines = [
        f"| generator ({n} ds2 e-, 1-100 GeV) | s/shower on 2 cores | speed-up vs Geant4 | AUC high-level | E_ratio sep. power |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        auc = "-" if row.auc_high is None else f"{row.auc_high:.3f}"
        sep = "-" if row.e_ratio_separation is None else f"{row.e_ratio_separation:.4f}"
        lines.append(f"| {row.name} | {row.seconds_per_shower:.4g} | {geant4 / row.seconds_per_shower:,.1f}x | {auc} | {sep} |")
    return "\n".join(lines)


def run_demo(out_dir: str | Path, config: DemoConfig | None = None, *, overwrite: bool = False,
             progress: bool = True) -> str:
    """Run the demo into ``out_dir`` and return the summary table (Markdown)."""
    from caloforge.evaluate import evaluate
    from caloforge.fastsim import get_detector, resolve_params
    from caloforge.fastsim import simulate as fastsim_simulate
    from caloforge.fullsim import simulate
    from caloforge.generation import generate_showers, load_model

    config = config or DemoConfig()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out}: folder exists and is not empty (use --overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "demo.yaml")
    say = print if progress else (lambda *a, **k: None)

    say(f"[1/4] Geant4: {config.n} ds2 electrons, 1-100 GeV, {config.workers} worker(s)")
    g4 = simulate(out / "geant4.h5", "ds2", "e-", "1:100", config.n, seed=config.seed, workers=config.workers,
                  overwrite=True, progress=progress)
    energies, _ = read_showers(g4.path)

    model = load_model("default")
    sampling = {**model.sampling, **({"sampler": config.sampler} if config.sampler else {}),
                **({"steps": config.steps} if config.steps else {})}
    say(f"[2/4] diffusion: bundled model, sampler {sampling['sampler']}, {sampling['steps']} step(s)")
    showers, wall = _timed(generate_showers, model, energies, **sampling, batch_size=config.batch_size,
                           seed=config.seed, progress=progress)
    write_showers(out / "diffusion.h5", energies, showers,
                  {"geometry": "ds2", "generator": "caloforge-diffusion", **sampling, "seed": config.seed},
                  overwrite=True)
    diffusion_s = wall / len(energies)

    say("[3/4] FastSim (parametrised GFLASH-style showers)")
    detector = get_detector("ds2")
    fast, wall = _timed(fastsim_simulate, energies[:, 0], detector, resolve_params(None, detector, "e-"), config.seed)
    write_showers(out / "fastsim.h5", energies, fast, {"geometry": "ds2", "generator": "caloforge-fastsim",
                                                       "seed": config.seed}, overwrite=True)
    fastsim_s = wall / len(energies)

    say("[4/4] evaluation against Geant4 (histograms, high-level classifier)")
    geant4_s = float(read_extra(g4.path, "cpu_time_s").mean()) / 2.0  # 2 cores in parallel, same energies
    rows = [DemoRow("Geant4 11.4 (mean CPU time / 2 cores)", geant4_s, None, None)]
    for name, path, seconds in (("caloforge diffusion", "diffusion.h5", diffusion_s),
                                ("caloforge FastSim", "fastsim.h5", fastsim_s)):
        metrics = evaluate(out / path, g4.path, "ds2", out / f"eval-{path.removesuffix('.h5')}",
                           metrics=["hist", "cls-high"], seed=config.seed, overwrite=True, progress=progress)
        rows.append(DemoRow(name, seconds, metrics["auc_high"], metrics["separation_power"].get("E_ratio")))
    table = summary_table(rows, len(energies))
    atomic_write_text(out / "summary.md", "# caloforge demo\n\n" + table + "\n\nGenerator times are wall-clock on "
                      "this machine; Geant4's is its mean CPU time per shower for the same energies divided by 2 "
                      "(two single-threaded workers on 2 cores).\n"
                      "Reports: eval-diffusion/report.md, eval-fastsim/report.md\n")
    say("\n" + table + f"\n\nwritten: {out}/summary.md, eval-diffusion/report.md, eval-fastsim/report.md")
    return table
