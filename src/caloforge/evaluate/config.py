"""Settings of ``caloforge evaluate`` as typed dataclasses (YAML-loadable, written next to outputs).

Defaults follow the CaloChallenge 2022 evaluation (arXiv:2410.21611, code in the challenge's
``evaluate.py``) except where CPU cost forces a smaller classifier; every deviation is an option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from caloforge.config import from_dict, read_yaml_mapping
from caloforge.errors import ConfigError

#: metric names accepted by ``metrics``
METRICS = ("hist", "cls-low", "cls-high", "fpd", "kpd")
#: plot levels: none, summary (families in grids + spectra + average showers), all (+ one figure per feature)
PLOT_LEVELS = ("none", "summary", "all")


@dataclass
class ClassifierConfig:
    """Fully connected classifier reference vs generated (CaloChallenge "DNN").

    The published setting (:meth:`published`) is 3 hidden layers of 2048, Adam with lr 2e-4,
    batch 1000, 50 epochs. The CPU default here is 3 x 256 with lr 1e-3 and batch 256 (converges in
    about 5-10 epochs instead of 20-50) and early stopping after ``patience`` epochs without a
    better validation loss, bounding the run time. ``split``: train / validation / test fractions
    of each class. The epoch with the lowest validation loss is kept; isotonic calibration is
    fitted on validation probabilities. ``device``: "cpu" or "cuda". Results are reproducible for
    a fixed seed, thread count (:attr:`EvaluateConfig.threads`) and device.

    ``repeats``: independent runs (new split, initialisation, shuffling) whose AUCs are averaged:
    with a few thousand showers a single run's AUC scatters by several hundredths, so one run
    cannot resolve the differences that matter. ``standardize``: the input levels ("low",
    "high") scaled by the training set's mean and std before training. The challenge feeds raw
    inputs; for the high-level features (log energies next to centres in units of 100 mm) that
    leaves the optimiser so badly conditioned that it stops within the patience far from
    converged: on ds2, DDPM-50 showers of the first bundled model scored AUC 0.57 with raw inputs
    and a patience of 5, 0.94 standardised (Geant4 against Geant4: about 0.51 both ways). Low-level inputs (voxel / E_inc, mostly zeros) are better left raw:
    standardising blows up rare voxels and weakens that classifier.
    """

    hidden_layers: int = 3
    width: int = 256
    dropout: float = 0.0
    epochs: int = 50
    patience: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    device: str = "cpu"
    repeats: int = 5
    standardize: tuple[str, ...] = ("high",)

    @classmethod
    def published(cls, **overrides) -> "ClassifierConfig":
        """The CaloChallenge final-evaluation classifier (arXiv:2410.21611): 3 x 2048, lr 2e-4,
        batch 1000, 50 epochs, best validation epoch kept (no early stop)."""
        values = dict(hidden_layers=3, width=2048, epochs=50, patience=50, batch_size=1000, lr=2e-4)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"classifier: device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.hidden_layers < 1 or self.width < 1:
            raise ConfigError("classifier: hidden_layers and width must be >= 1")
        self.standardize = tuple(self.standardize)
        if not set(self.standardize) <= {"low", "high"}:
            raise ConfigError(f"classifier: standardize must list 'low' and/or 'high', got {list(self.standardize)}")
        if self.repeats < 1:
            raise ConfigError(f"classifier: repeats must be >= 1, got {self.repeats}")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ConfigError("classifier: epochs, batch_size and patience must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"classifier: dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0:
            raise ConfigError(f"classifier: lr must be > 0, got {self.lr}")
        split = tuple(float(s) for s in self.split)
        if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1.0) > 1e-6:
            raise ConfigError(
                f"classifier: split must be three positive fractions summing to 1, got {list(self.split)}")
        self.split = split  # type: ignore[assignment]


@dataclass
class FPDConfig:
    """Frechet physics distance (Kansal et al., arXiv:2211.10295; jetnet 0.2.5 ``fpd``).

    FPD is measured at ``num_points`` batch sizes evenly spaced in 1/N between ``min_samples`` and
    ``max_samples`` (``num_batches`` batches each, drawn with replacement) and extrapolated to
    1/N -> 0 by a linear fit. The CaloChallenge calls it with ``min_samples=10000`` (max 50000).
    When the smaller sample has fewer showers than ``max_samples``, the largest batch is the sample
    size and the smallest is ``min(min_samples, that / 2)``.
    """

    min_samples: int = 10_000
    max_samples: int = 50_000
    num_batches: int = 20
    num_points: int = 10

    def __post_init__(self) -> None:
        if self.min_samples < 2 or self.max_samples < self.min_samples:
            raise ConfigError("fpd: need 2 <= min_samples <= max_samples")
        if self.num_batches < 1 or self.num_points < 2:
            raise ConfigError("fpd: need num_batches >= 1 and num_points >= 2")


@dataclass
class KPDConfig:
    """Kernel physics distance: unbiased MMD^2, kernel (x.y/d + 1)^4, median over ``num_batches``
    batches of ``batch_size`` (drawn with replacement; CaloChallenge: 10 x 10000); the error is
    half the 16-84 % interquantile range. ``batch_size`` shrinks to the smaller sample size."""

    num_batches: int = 10
    batch_size: int = 10_000

    def __post_init__(self) -> None:
        if self.num_batches < 1 or self.batch_size < 2:
            raise ConfigError("kpd: need num_batches >= 1 and batch_size >= 2")


@dataclass
class EvaluateConfig:
    """Everything that determines an evaluation (written as ``config.yaml`` next to the outputs).

    ``threshold_mev``: cell threshold applied to both samples first (None = the CaloChallenge one
    of the geometry: 1 MeV for dataset 1, 15.15 keV for datasets 2/3). ``max_showers``: use only the
    first N showers of each file. ``paired``: the files hold the same showers event by event
    (adds concordance correlation coefficients). ``threads``: CPU threads of torch and BLAS during
    the evaluation (0 = the libraries' defaults, i.e. all cores). The default 1 is deliberate: on a
    shared or busy machine multi-threaded training and kernel sums slow down by factors of 4-5
    (measured on the 2-core build machine under load), while one thread loses at most ~2x when the
    machine is idle.
    """

    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    seed: int = 0
    threshold_mev: float | None = None
    max_showers: int | None = None
    paired: bool = False
    plots: str = "summary"
    threads: int = 1
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    fpd: FPDConfig = field(default_factory=FPDConfig)
    kpd: KPDConfig = field(default_factory=KPDConfig)

    def __post_init__(self) -> None:
        metrics = [str(m) for m in self.metrics]
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ConfigError(f"metrics: unknown {unknown}; choose from {list(METRICS)}")
        self.metrics = [m for m in METRICS if m in metrics]  # canonical order, no duplicates
        if self.threads < 0:
            raise ConfigError(f"threads: must be >= 0, got {self.threads}")
        if self.seed < 0:
            raise ConfigError(f"seed: must be >= 0, got {self.seed}")
        if self.plots not in PLOT_LEVELS:
            raise ConfigError(f"plots: expected one of {list(PLOT_LEVELS)}, got {self.plots!r}")
        if self.threshold_mev is not None and self.threshold_mev < 0:
            raise ConfigError(f"threshold_mev: must be >= 0, got {self.threshold_mev}")
        if self.max_showers is not None and self.max_showers < 1:
            raise ConfigError(f"max_showers: must be >= 1, got {self.max_showers}")


def load_evaluate_config(path: str | Path) -> EvaluateConfig:
    """Read an :class:`EvaluateConfig` from YAML: either its fields at the top level, or the
    ``config.yaml`` that :func:`~caloforge.evaluate.evaluate` writes (``inputs`` + ``evaluate``;
    the ``inputs`` part is informational and ignored here). Unknown keys are errors."""
    data = read_yaml_mapping(path)
    if "evaluate" in data and set(data) <= {"inputs", "evaluate"}:
        if not isinstance(data["evaluate"], dict):
            raise ConfigError(f"{path}: 'evaluate' must be a mapping")
        return from_dict(EvaluateConfig, data["evaluate"], where=f"{path}:evaluate")
    return from_dict(EvaluateConfig, data, where=str(path))
