"""``caloforge evaluate``: CaloChallenge metrics, plots and report for a generated sample."""

from __future__ import annotations

import argparse
import dataclasses

from caloforge.commands._common import add_geometry, add_overwrite, add_seed, positive_int
from caloforge.errors import ConfigError

NAME = "evaluate"
HELP = "compare generated showers with a reference (separation power, classifier AUC, FPD/KPD) and write a report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--generated", required=True, help="generated (or FastSim) CaloChallenge HDF5 file")
    parser.add_argument("--reference", required=True, help="reference (Geant4) CaloChallenge HDF5 file")
    add_geometry(parser, required=True)
    parser.add_argument("--out", required=True, help="output folder (metrics.json, report.md, plots/, config.yaml)")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated subset of hist,cls-low,cls-high,fpd,kpd (default: all)")
    parser.add_argument("--config", default=None,
                        help="YAML with evaluation settings (EvaluateConfig fields, or a previous run's config.yaml); "
                             "options given here override it")
    parser.add_argument("--paired", action="store_true", default=None,
                        help="the files hold the same showers event by event: add concordance correlations")
    parser.add_argument("--plots", choices=("none", "summary", "all"), default=None,
                        help="summary (default): grids per feature family; all: also one figure per feature")
    parser.add_argument("--max-showers", type=positive_int, default=None, help="use the first N showers of each file")
    parser.add_argument("--threshold-mev", type=float, default=None,
                        help="cell threshold in MeV (default: the CaloChallenge one of the geometry)")
    parser.add_argument("--cls-preset", choices=("cpu", "published"), default=None,
                        help="classifier settings: cpu (default, 3 x 256) or published (CaloChallenge: 3 x 2048, "
                             "lr 2e-4, batch 1000, 50 epochs; slow on CPU)")
    parser.add_argument("--cls-device", choices=("cpu", "cuda"), default=None, help="classifier device (default cpu)")
    parser.add_argument("--cls-width", type=positive_int, default=None,
                        help="classifier hidden width (published: 2048)")
    parser.add_argument("--cls-layers", type=positive_int, default=None, help="classifier hidden layers (published: 3)")
    parser.add_argument("--cls-epochs", type=positive_int, default=None, help="classifier maximum epochs")
    parser.add_argument("--cls-repeats", type=positive_int, default=None,
                        help="independent classifier runs whose AUCs are averaged (default 5; the spread is reported)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch and BLAS (default 1, robust on shared machines; 0 = all cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_seed(parser)
    parser.set_defaults(seed=None)  # None: keep the seed of --config (else 0)
    add_overwrite(parser)


def build_config(args: argparse.Namespace):
    """EvaluateConfig from ``--config`` (if any) with command-line options on top."""
    from caloforge.evaluate import ClassifierConfig, EvaluateConfig, load_evaluate_config

    config = load_evaluate_config(args.config) if args.config else EvaluateConfig()
    top = {} if args.seed is None else {"seed": args.seed}
    if args.metrics is not None:
        top["metrics"] = [m.strip() for m in args.metrics.split(",") if m.strip()]
        if not top["metrics"]:
            raise ConfigError("--metrics: give at least one of hist,cls-low,cls-high,fpd,kpd")
    for name in ("paired", "plots", "max_showers", "threshold_mev", "threads"):
        if getattr(args, name) is not None:
            top[name] = getattr(args, name)
    classifier = config.classifier
    if args.cls_preset == "published":
        classifier = ClassifierConfig.published()
    elif args.cls_preset == "cpu":
        classifier = ClassifierConfig()
    cls = {k: v for k, v in (("width", args.cls_width), ("hidden_layers", args.cls_layers),
                             ("epochs", args.cls_epochs), ("device", args.cls_device),
                             ("repeats", args.cls_repeats)) if v is not None}
    top["classifier"] = dataclasses.replace(classifier, **cls)
    return dataclasses.replace(config, **top)


def run(args: argparse.Namespace) -> int:
    from caloforge.evaluate import evaluate

    config = build_config(args)
    metrics = evaluate(args.generated, args.reference, args.geometry, args.out, config=config,
                       overwrite=args.overwrite, progress=not args.no_progress)

    def show(value, scale=1.0, digits=4):
        return "-" if value is None else f"{value * scale:.{digits}f}"

    def auc(level):
        result = metrics.get(f"classifier_{level}")
        return "-" if not result else f"{result['auc']:.4f} +- {result['auc_std']:.4f}"

    print(f"AUC low / high   {auc('low')} / {auc('high')}  (mean +- spread of {config.classifier.repeats} runs)")
    print(f"JSD low / high   {show(metrics['jsd_low'])} / {show(metrics['jsd_high'])}")
    print(f"FPD x1e3         {show(metrics['fpd'], 1e3, 3)} +- {show(metrics['fpd_err'], 1e3, 3)}")
    print(f"KPD x1e3         {show(metrics['kpd'], 1e3, 4)} +- {show(metrics['kpd_err'], 1e3, 4)}")
    for family, s in metrics["separation_power_summary"].items():
        print(f"sep. power {family:<13} mean {s['mean']:.5f}  max {s['max']:.5f} ({s['max_feature']})")
    if metrics.get("paired"):
        p = metrics["paired"]
        print(f"CCC voxels / layers / E_total  {p['ccc_voxels']:.4f} / {p['ccc_layers']:.4f} / {p['ccc_e_total']:.4f}")
    print(f"written to {args.out} (report.md, metrics.json)")
    return 0
