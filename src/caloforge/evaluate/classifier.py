"""Classifier two-sample test: a fully connected net learns to tell reference from generated.

CaloChallenge definition (arXiv:2410.21611; its ``evaluate.py``): low-level input
``[log10 E_inc, voxels / E_inc]``, high-level input ``[log10 E_inc, log10(E_layer + 1e-8),
EC_eta / 100, EC_phi / 100, width_eta / 100, width_phi / 100]`` (energies MeV, lengths mm);
reference label 1, generated label 0; equal class sizes; train / validation / test split; the
epoch with the best validation loss is kept; ROC AUC on held-out test *probabilities*; isotonic
regression fitted on validation probabilities calibrates the test probabilities, and
``JSD = (ln 2 - BCE_calibrated) / ln 2`` (the challenge's normalised Jensen-Shannon estimate).
AUC 0.5 / JSD 0 = indistinguishable; AUC 1 / JSD 1 = perfectly separable.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from caloforge.errors import ConfigError
from caloforge.evaluate.config import ClassifierConfig
from caloforge.features import ShowerFeatures
from caloforge.geometry import CylindricalReadout


def low_level_input(energies: np.ndarray, showers: np.ndarray) -> np.ndarray:
    """``[log10 E_inc, voxels / E_inc]``: energies (N,) or (N, 1) MeV, showers (N, V) MeV -> (N, V + 1) float32."""
    e = np.asarray(energies, dtype=np.float32).reshape(-1, 1)
    return np.concatenate([np.log10(e), np.asarray(showers, dtype=np.float32) / e], axis=1)


def high_level_input(features: ShowerFeatures, geometry: CylindricalReadout | None = None) -> np.ndarray:
    """``[log10 E_inc, log10(E_layer + 1e-8), EC_eta/100, EC_phi/100, width_eta/100, width_phi/100]``.

    E_layer in MeV over the L' layers that have voxels (all L without ``geometry``; the challenge
    uses the layers with voxels), centres/widths in mm over the K alpha-binned layers:
    (N, 1 + L' + 4K) float32.
    """
    e_layer = features.e_layer if geometry is None else features.e_layer[:, geometry.voxels_per_layer > 0]
    parts = [
        np.log10(features.e_inc.astype(np.float64)).reshape(-1, 1),
        np.log10(e_layer.astype(np.float64) + 1e-8),
        features.ec_eta / 1e2, features.ec_phi / 1e2, features.width_eta / 1e2, features.width_phi / 1e2,
    ]
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts], axis=1).astype(np.float32)


class DenseClassifier(torch.nn.Module):
    """``hidden_layers`` x (Linear(width) + LeakyReLU + Dropout), then Linear(1) giving a logit.

    Input (B, D) float32; output (B,) logits. The CaloChallenge "DNN".
    """

    def __init__(self, n_inputs: int, hidden_layers: int, width: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        size = n_inputs
        for _ in range(hidden_layers):
            layers += [torch.nn.Linear(size, width), torch.nn.LeakyReLU(), torch.nn.Dropout(dropout)]
            size = width
        layers.append(torch.nn.Linear(size, 1))
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


@dataclass
class ClassifierResult:
    """Outcome of a classifier test, over ``config.repeats`` independent runs (new data split,
    initialisation and shuffling each). ``auc`` / ``auc_calibrated`` / ``jsd`` / ``accuracy``: means
    over the runs; ``auc_std`` / ``jsd_std``: their standard deviation between runs (the spread a
    single run would show); ``aucs``: the AUC of each run. ``auc`` is on raw test probabilities,
    ``auc_calibrated`` after isotonic calibration (the challenge prints this one; ties make it
    slightly different); ``jsd`` as defined in the module doc; ``accuracy`` of calibrated
    probabilities at 0.5. ``best_epochs`` / ``epochs_run``: per run. Sizes are per run."""

    auc: float
    auc_std: float
    aucs: list[float]
    auc_calibrated: float
    jsd: float
    jsd_std: float
    accuracy: float
    best_epochs: list[int]
    epochs_run: list[int]
    n_train: int
    n_validation: int
    n_test: int
    n_inputs: int

    def as_dict(self) -> dict:
        return asdict(self)


def split_indices(n: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle ``range(n)`` and cut it into train / validation / test index arrays."""
    order = rng.permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    return [order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]]


def _predict(model: DenseClassifier, x: torch.Tensor, batch_size: int) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    return logits.cpu().numpy().astype(np.float64)


def _bce(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def classifier_test(reference: np.ndarray, generated: np.ndarray, config: ClassifierConfig, seed: int,
                    progress: bool = True, desc: str = "classifier", threads: int | None = None,
                    standardize: bool = True) -> ClassifierResult:
    """Train :class:`DenseClassifier` s to separate ``reference`` (label 1) from ``generated`` (0).

    ``reference``, ``generated``: (N_ref, D), (N_gen, D) float32 inputs (see :func:`low_level_input`,
    :func:`high_level_input`). Each of the ``config.repeats`` runs subsamples the larger set to the
    smaller one's size (balanced classes, as the challenge requires), splits each class with
    ``config.split``, standardises the inputs with the training set's mean and std (if
    ``standardize``; see :attr:`ClassifierConfig.standardize`) and trains a fresh network.
    Deterministic for a given ``seed`` (own
    torch/numpy generators; the global RNG state is restored) and thread count. ``threads``: torch
    intra-op threads while training (None = leave torch's setting).
    """
    if min(len(reference), len(generated)) < 10:
        raise ValueError(f"classifier test needs at least 10 showers per sample, got {min(len(reference), len(generated))}")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("classifier.device: 'cuda' requested but torch sees no CUDA device")
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        runs = [_one_run(reference, generated, config, seed + 7919 * k, standardize, progress,
                         desc if config.repeats == 1 else f"{desc} {k + 1}/{config.repeats}")
                for k in range(config.repeats)]
    finally:
        torch.set_num_threads(threads_before)
    aucs = [r["auc"] for r in runs]
    jsds = [r["jsd"] for r in runs]
    return ClassifierResult(
        auc=float(np.mean(aucs)), auc_std=float(np.std(aucs)), aucs=aucs,
        auc_calibrated=float(np.mean([r["auc_calibrated"] for r in runs])),
        jsd=float(np.mean(jsds)), jsd_std=float(np.std(jsds)),
        accuracy=float(np.mean([r["accuracy"] for r in runs])),
        best_epochs=[r["best_epoch"] for r in runs], epochs_run=[r["epochs_run"] for r in runs],
        **{k: runs[0][k] for k in ("n_train", "n_validation", "n_test", "n_inputs")},
    )


def _one_run(reference: np.ndarray, generated: np.ndarray, config: ClassifierConfig, seed: int, standardize: bool,
             progress: bool, desc: str) -> dict:
    """One classifier run (balanced subsample, split, standardise, train, calibrate, score) as a dict."""
    rng = np.random.default_rng(seed)
    n = min(len(reference), len(generated))
    ref = reference[rng.choice(len(reference), n, replace=False)] if len(reference) > n else reference
    gen = generated[rng.choice(len(generated), n, replace=False)] if len(generated) > n else generated
    parts = []
    for data, label in ((ref, 1.0), (gen, 0.0)):
        idx = split_indices(n, config.split, rng)
        parts.append([(data[i], np.full(len(i), label, np.float32)) for i in idx])
    sets = []
    for k in range(3):
        x = np.concatenate([parts[0][k][0], parts[1][k][0]]).astype(np.float64)
        y = np.concatenate([parts[0][k][1], parts[1][k][1]])
        sets.append((x, y))
    if standardize:  # statistics of the training set only
        mean, std = sets[0][0].mean(axis=0), sets[0][0].std(axis=0)
        std = np.where(std > 0, std, 1.0)
        sets = [((x - mean) / std, y) for x, y in sets]
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)) for x, y in sets)
    device = torch.device(config.device)
    x_train, y_train, x_val, x_test = (t.to(device) for t in (x_train, y_train, x_val, x_test))
    p_val, p_test, best_epoch, epochs_run = _train(x_train, y_train, x_val, y_val, x_test, config, seed, progress, desc)
    labels_val, labels_test = y_val.numpy().astype(np.float64), y_test.numpy().astype(np.float64)
    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(p_val, labels_val)
    p_cal = calibrator.predict(p_test)
    return {
        "auc": float(roc_auc_score(labels_test, p_test)),
        "auc_calibrated": float(roc_auc_score(labels_test, p_cal)),
        "jsd": float((np.log(2.0) - _bce(p_cal, labels_test)) / np.log(2.0)),
        "accuracy": float(np.mean((p_cal >= 0.5) == (labels_test == 1))),
        "best_epoch": best_epoch, "epochs_run": epochs_run,
        "n_train": int(x_train.shape[0]), "n_validation": int(x_val.shape[0]), "n_test": int(x_test.shape[0]),
        "n_inputs": int(x_train.shape[1]),
    }


def _train(x_train, y_train, x_val, y_val, x_test, config: ClassifierConfig, seed: int, progress: bool, desc: str):
    """Adam + BCE on logits; keep the weights of the epoch with the lowest validation loss and stop
    after ``patience`` epochs without improvement.

    Returns (validation probabilities, test probabilities, best epoch, epochs run)."""
    device = x_train.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = DenseClassifier(x_train.shape[1], config.hidden_layers, config.width, config.dropout).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        generator = torch.Generator().manual_seed(seed)  # CPU generator: same shuffles on any device
        best_loss, best_state, best_epoch, epochs_run, stale = np.inf, None, 0, 0, 0
        bar = tqdm(range(config.epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
        for epoch in bar:
            model.train()
            order = torch.randperm(x_train.shape[0], generator=generator).to(device)
            for i in range(0, len(order), config.batch_size):
                batch = order[i:i + config.batch_size]
                optimizer.zero_grad()
                loss = loss_fn(model(x_train[batch]), y_train[batch])
                loss.backward()
                optimizer.step()
            val_loss = float(loss_fn(torch.from_numpy(_predict(model, x_val, 4096)), y_val.double()))
            epochs_run = epoch + 1
            bar.set_postfix(val_loss=f"{val_loss:.4f}")
            if val_loss < best_loss:
                best_loss, best_state, best_epoch, stale = val_loss, copy.deepcopy(model.state_dict()), epoch + 1, 0
            else:
                stale += 1
                if stale >= config.patience:
                    break
        bar.close()
        model.load_state_dict(best_state)
        p_val = 1.0 / (1.0 + np.exp(-_predict(model, x_val, 4096)))
        p_test = 1.0 / (1.0 + np.exp(-_predict(model, x_test, 4096)))
    return p_val, p_test, best_epoch, epochs_run
