"""FastSim parameters: typed dataclasses, YAML files, literature defaults and shipped fitted sets.

All functional forms are those of GFLASH (Grindhammer & Peters, arXiv:hep-ex/0001020), with every
coefficient free so that :func:`caloforge.fastsim.fit` can adjust it to Geant4 showers of one
detector. ``y = E / E_c`` (E_c: effective critical energy of the stack), ``E`` in GeV where a
formula says so, depths in radiation lengths, radii in Moliere radii.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from caloforge.config import from_dict, load_config, save_config
from caloforge.errors import ConfigError
from caloforge.fastsim.detector import FastSimDetector

PARTICLES = ("e-", "e+", "gamma")


@dataclass
class LongitudinalParams:
    """Gamma-distribution profile ``dE/dt ~ t^(alpha-1) exp(-beta t)`` with correlated fluctuations.

    Per shower, ``(ln T, ln alpha)`` is a correlated Gaussian (T = (alpha - 1) / beta, depth of the
    maximum in X0), arXiv:hep-ex/0001020 eqs. for individual profiles::

        <ln T>       = ln(t_a + t_b ln y)          sigma(ln T)     = 1 / (t_width_a + t_width_b ln y)
        <ln alpha>   = ln(alpha_a + alpha_b ln y)  sigma(ln alpha) = 1 / (alpha_width_a + alpha_width_b ln y)
        rho(ln T, ln alpha) = rho_a + rho_b ln y

    ``alpha_min``: ln alpha is drawn from its Gaussian truncated to alpha >= alpha_min (alpha close
    to 1 would make beta = (alpha - 1) / T vanish: showers without a maximum that leak out at the back).

    Early component (an addition to GFLASH, 0 = off): a fraction ``early_a * E[GeV]^-early_b``
    (at most 0.5) of the spots of every shower follows an exponential depth distribution of mean
    ``early_length_x0`` instead of the shower's Gamma profile. It stands for what every Geant4
    shower deposits in the first layers whatever its fluctuation (the primary's ionisation, early
    soft secondaries, albedo), which a Gamma profile ``t^(alpha-1)`` only gives to showers with a
    small alpha.
    """

    t_a: float
    t_b: float
    alpha_a: float
    alpha_b: float
    t_width_a: float
    t_width_b: float
    alpha_width_a: float
    alpha_width_b: float
    rho_a: float
    rho_b: float
    alpha_min: float = 1.5
    early_a: float = 0.0
    early_b: float = 0.0
    early_length_x0: float = 1.0


@dataclass
class RadialParams:
    """Radial profile ``f(r) = p f_C(r) + (1 - p) f_T(r)``, ``f_X(r) = 2 r R_X^2 / (r^2 + R_X^2)^2``.

    r in Moliere radii, tau = t / T (depth over the shower's own maximum), E in GeV
    (arXiv:hep-ex/0001020, radial profiles)::

        R_C = rc_a + rc_b ln E + rc_c tau
        R_T = rt_k1 (exp(rt_k3 (tau - rt_k2)) + exp((rt_k4_a + rt_k4_b ln E) (tau - rt_k2)))
        p   = p_1 exp((p_2 - tau) / p_3 - exp((p_2 - tau) / p_3)),  p_3 = p_3_a + p_3_b ln E
    """

    rc_a: float
    rc_b: float
    rc_c: float
    rt_k1: float
    rt_k2: float
    rt_k3: float
    rt_k4_a: float
    rt_k4_b: float
    p_1: float
    p_2: float
    p_3_a: float
    p_3_b: float


@dataclass
class SpotParams:
    """Energy spots: their number is Poisson with mean ``n_per_gev * E[GeV] ** exponent``.

    Spot energies are Gamma(``energy_shape``)-distributed weights normalised to the shower's
    visible energy (``energy_shape`` large = equal spots, GFLASH's choice; small = Landau-like spread).
    """

    n_per_gev: float
    exponent: float = 1.0
    energy_shape: float = 1.0


@dataclass
class ResponseParams:
    """Visible energy ``E_vis = E * mu(E) * (1 + sigma(E) z)``, z ~ N(0, 1), E in GeV::

        mu(E) = mean_a + mean_b ln E + mean_c (ln E)^2,   sigma(E) = sqrt(stochastic^2 / E + constant^2)

    E_vis is what a fully contained readout would record (leakage comes from the profiles).
    ``layer_scale``: optional visible-energy factor per readout layer (empty = 1 everywhere): the
    depth dependence of the sampling fraction (e/mip changes along the shower, the transition effect
    GFLASH's ``e_hat`` terms describe) and what the Gamma form misses (the primary's own ionisation
    in the first layers), fitted as the ratio of Geant4 to FastSim mean layer energies.
    """

    mean_a: float = 1.0
    mean_b: float = 0.0
    mean_c: float = 0.0
    stochastic: float = 0.0
    constant: float = 0.0
    layer_scale: list[float] = field(default_factory=list)


@dataclass
class FastSimParams:
    """A complete FastSim parameter set for one stack and a set of particles.

    ``stack``: effective constants of the detector it belongs to (see
    :meth:`FastSimDetector.stack_summary`); a detector with other constants is refused.
    ``provenance``: how the set was obtained (data file, number of showers, seed, fit options).
    """

    detector: str
    particles: list[str]
    stack: dict[str, float]
    longitudinal: LongitudinalParams
    radial: RadialParams
    spots: SpotParams
    response: ResponseParams = field(default_factory=ResponseParams)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [p for p in self.particles if p not in PARTICLES]
        if bad:
            raise ConfigError(f"params: unknown particle(s) {bad}; allowed: {list(PARTICLES)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping of python builtins (YAML / JSON ready)."""
        return _plain(asdict(self))

    def check_detector(self, detector: FastSimDetector, particle: str | None = None, source: str = "params") -> None:
        """Raise :class:`ConfigError` if the set does not belong to ``detector``'s stack or ``particle``."""
        own = detector.stack_summary()
        for key in ("x0_mm", "moliere_mm", "critical_mev"):
            if key not in self.stack:
                raise ConfigError(f"{source}: 'stack' lacks '{key}'")
            if abs(self.stack[key] - own[key]) > 1e-3 * abs(own[key]):
                raise ConfigError(
                    f"{source}: fitted for a stack with {key}={self.stack[key]:g} (detector {self.detector}), "
                    f"but detector {detector.name} has {key}={own[key]:g}"
                )
        if particle is not None and particle not in self.particles:
            raise ConfigError(f"{source}: parameters cover {self.particles}, not {particle!r}")
        n_scale, n_layers = len(self.response.layer_scale), detector.geometry.n_layers
        if n_scale and n_scale != n_layers:
            raise ConfigError(f"{source}: response.layer_scale has {n_scale} values, readout "
                              f"{detector.geometry.name} has {n_layers} layers")


def gflash_params(detector: FastSimDetector, particles: list[str] | None = None) -> FastSimParams:
    """Literature parameters: the GFLASH homogeneous-medium formulas (arXiv:hep-ex/0001020)
    evaluated with the stack's effective Z, critical energy and Moliere radius.

    Sampling-specific corrections are left to :func:`caloforge.fastsim.fit`; this set is its
    starting point and the fallback where no fitted set exists. The response is set to 1 (E_vis = E).
    """
    z = detector.z_eff
    longitudinal = LongitudinalParams(
        t_a=-0.812, t_b=1.0, alpha_a=0.81, alpha_b=0.458 + 2.26 / z,
        t_width_a=-1.4, t_width_b=1.26, alpha_width_a=-0.58, alpha_width_b=0.86,
        rho_a=0.705, rho_b=-0.023,
    )
    radial = RadialParams(
        rc_a=0.0251, rc_b=0.00319, rc_c=0.1162 - 0.000381 * z,
        rt_k1=0.659 - 0.00309 * z, rt_k2=0.645, rt_k3=-2.59, rt_k4_a=0.3585, rt_k4_b=0.0421,
        p_1=2.632 - 0.00094 * z, p_2=0.401 + 0.00187 * z, p_3_a=1.313, p_3_b=-0.0686,
    )
    spots = SpotParams(n_per_gev=float(93.0 * np.log(z)), exponent=0.876, energy_shape=1e6)
    return FastSimParams(
        detector=detector.name, particles=list(particles or ["e-", "e+", "gamma"]), stack=detector.stack_summary(),
        longitudinal=longitudinal, radial=radial, spots=spots, response=ResponseParams(),
        provenance={"source": "GFLASH literature values, arXiv:hep-ex/0001020 (homogeneous formulas, effective Z)"},
    )


def load_params(path: str | Path) -> FastSimParams:
    """Load a parameter YAML (unknown or missing keys are errors naming the key)."""
    return load_config(FastSimParams, path)


def params_from_dict(data: dict[str, Any], where: str = "params") -> FastSimParams:
    return from_dict(FastSimParams, data, where=where)


def _plain(value: Any) -> Any:
    """Nested python builtins (numpy scalars and arrays converted) for safe YAML dumping."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_params(params: FastSimParams, path: str | Path) -> Path:
    """Write ``params`` as YAML atomically."""
    return save_config(params.to_dict(), path)


def shipped_params(detector: FastSimDetector, particle: str) -> tuple[FastSimParams, Path] | None:
    """The fitted set shipped in ``caloforge/data/fastsim`` for ``detector``'s stack and ``particle``
    (any file whose stack constants match, so ds2 parameters also serve ds3), or None."""
    folder = resources.files("caloforge") / "data" / "fastsim"
    if not folder.is_dir():
        return None
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml") or entry.name.endswith(".fit.yaml"):
            continue
        path = Path(str(entry))
        try:
            params = load_params(path)
            params.check_detector(detector, particle, str(path))
        except ConfigError:
            continue
        return params, path
    return None


def resolve_params(
    spec: str | Path | FastSimParams | None, detector: FastSimDetector, particle: str
) -> FastSimParams:
    """Parameters for ``detector`` and ``particle``.

    ``spec``: a :class:`FastSimParams`, a YAML path, ``"gflash"`` (literature values) or None
    (the fitted set shipped for the detector's stack; an error if there is none for the particle).
    The result is checked against the detector's stack and the particle.
    """
    if particle not in PARTICLES:
        raise ConfigError(f"unknown particle {particle!r}; FastSim simulates {list(PARTICLES)}")
    if isinstance(spec, FastSimParams):
        params, source = spec, "params"
    elif spec is None:
        found = shipped_params(detector, particle)
        if found is None:
            raise ConfigError(
                f"no fitted FastSim parameters shipped for {particle} on detector {detector.name}; fit them with "
                f"'caloforge fastsim fit --data G4.h5 --detector {detector.name} --particle {particle} --out P.yaml' "
                "or pass --params gflash for the literature values"
            )
        return found[0]
    elif str(spec) == "gflash":
        params, source = gflash_params(detector, [particle]), "gflash"
    else:
        params, source = load_params(spec), str(spec)
    params.check_detector(detector, particle, source)
    return params


def with_updates(params: FastSimParams, **sections: Any) -> FastSimParams:
    """Copy of ``params`` with whole sections replaced (e.g. ``longitudinal=...``)."""
    return replace(params, **sections)


def dump_params(params: FastSimParams) -> str:
    """YAML text of ``params``."""
    return yaml.safe_dump(params.to_dict(), sort_keys=False)
