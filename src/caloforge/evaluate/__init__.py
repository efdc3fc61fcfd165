"""CaloChallenge evaluation: separation powers, classifier AUC/JSD, FPD/KPD, paired CCC, plots, report.

Entry point :func:`evaluate` (also ``caloforge evaluate``); the metric functions are importable
on their own for notebooks.
"""

from caloforge.evaluate.classifier import (
    ClassifierResult,
    DenseClassifier,
    classifier_test,
    high_level_input,
    low_level_input,
)
from caloforge.evaluate.config import (
    METRICS,
    ClassifierConfig,
    EvaluateConfig,
    FPDConfig,
    KPDConfig,
    load_evaluate_config,
)
from caloforge.evaluate.histograms import FeatureHistogram, feature_histograms, separation_power, voxel_histogram
from caloforge.evaluate.paired import concordance_correlation, paired_metrics
from caloforge.evaluate.physics_distances import (
    DistanceResult,
    fpd,
    fpd_batch_sizes,
    frechet_distance,
    kpd,
    mmd_poly_unbiased,
    normalise_features,
)
from caloforge.evaluate.pipeline import evaluate
from caloforge.evaluate.samples import Sample, load_sample, sample_from_arrays
from caloforge.evaluate.synthetic import synthetic_showers

__all__ = [
    "METRICS",
    "ClassifierConfig",
    "ClassifierResult",
    "DenseClassifier",
    "DistanceResult",
    "EvaluateConfig",
    "FPDConfig",
    "FeatureHistogram",
    "KPDConfig",
    "Sample",
    "classifier_test",
    "concordance_correlation",
    "evaluate",
    "feature_histograms",
    "fpd",
    "fpd_batch_sizes",
    "frechet_distance",
    "high_level_input",
    "kpd",
    "load_evaluate_config",
    "load_sample",
    "low_level_input",
    "mmd_poly_unbiased",
    "normalise_features",
    "paired_metrics",
    "sample_from_arrays",
    "separation_power",
    "synthetic_showers",
    "voxel_histogram",
]
