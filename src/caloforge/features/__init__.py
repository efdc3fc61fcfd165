"""High-level shower features (CaloChallenge definitions)."""

from caloforge.features.highlevel import ShowerFeatures, apply_threshold, compute_features, features_from_file, layer_sums

__all__ = ["ShowerFeatures", "apply_threshold", "compute_features", "features_from_file", "layer_sums"]
