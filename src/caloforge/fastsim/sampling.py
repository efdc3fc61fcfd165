"""GFLASH-style shower generation (Grindhammer & Peters, arXiv:hep-ex/0001020), fully vectorised.

Per shower: ``(ln T, ln alpha)`` from a correlated Gaussian, ``beta = (alpha - 1) / T``, a visible
energy ``E mu(E) (1 + sigma(E) z)`` and a Poisson number of energy spots. The spots are spread
over the depth slices of the detector by a multinomial draw from the Gamma profile
``t^(alpha-1) exp(-beta t)`` integrated over each slice (mixed with the optional early exponential
component; the rest leaks out at the back), and in
each slice split binomially between the core and the tail of the radial profile evaluated at
``tau = t / T``. Per spot: radius from the inverse CDF ``r = R sqrt(u / (1 - u))`` of its component,
a uniform azimuth, and a share of the visible energy (equal, or Gamma-distributed weights). Spots
are binned into the readout with one ``np.bincount`` per chunk; optional per-layer visible-energy
factors are applied last.

Randomness: chunk ``i`` draws from ``Generator(PCG64(SeedSequence(seed).spawn(...)[i]))``; chunk
boundaries depend only on the energies and the parameters, so the same energies and seed give the
same showers for any number of worker threads.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from scipy.special import gammainc, ndtr, ndtri
from tqdm.auto import tqdm

from caloforge.errors import CaloforgeError
from caloforge.fastsim.deposit import VoxelLookup
from caloforge.fastsim.detector import FastSimDetector
from caloforge.fastsim.params import FastSimParams
from caloforge.fastsim.profiles import (
    early_fraction,
    longitudinal_moments,
    mean_response,
    mean_spot_count,
    radial_shape,
    resolution,
)
from caloforge.geometry import CylindricalReadout

MAX_SPOTS_PER_CHUNK = 1_000_000
MAX_SHOWERS_PER_CHUNK = 256


@dataclass
class ShowerTruth:
    """Per-shower latent quantities of a FastSim chunk (all (n,) float64).

    ``t_max``: depth of the profile maximum T, X0; ``alpha``, ``beta``: Gamma profile parameters;
    ``e_visible``: visible energy before leakage, MeV; ``n_spots``: number of spots.
    """

    t_max: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    e_visible: np.ndarray
    n_spots: np.ndarray


class FastSim:
    """A parametrised EM shower simulator for one detector and parameter set.

    Build once, then call :meth:`sample` (a refiner can call it on each batch)::

        sim = FastSim(get_detector("ds2"), resolve_params(None, get_detector("ds2"), "e-"))
        showers = sim.sample(energies_mev, seed=1)   # (N, V) float32, MeV

    ``n_workers``: threads used by :meth:`sample` / :meth:`iter_chunks` (numpy releases the GIL
    in its kernels); the output does not depend on it.
    """

    def __init__(self, detector: FastSimDetector, params: FastSimParams, *, n_workers: int = 2,
                 max_spots_per_chunk: int = MAX_SPOTS_PER_CHUNK, fast_path: bool = True) -> None:
        params.check_detector(detector)
        self.detector = detector
        self.params = params
        self.n_workers = max(1, int(n_workers))
        self.max_spots_per_chunk = int(max_spots_per_chunk)
        self.lookup = VoxelLookup(detector.geometry, fast_path=fast_path)
        self._slice_edges = detector.slice_edges_x0
        self._slice_centres = 0.5 * (self._slice_edges[1:] + self._slice_edges[:-1])
        self._slice_recorded = detector.slice_layer >= 0
        self._slice_layer = np.maximum(detector.slice_layer, 0)
        self._slice_moliere = detector.slice_moliere_mm.astype(np.float32)
        self._critical = float(detector.critical_mev)
        self._n_alpha = int(self.lookup.n_alpha[0])
        scale = params.response.layer_scale
        self._voxel_scale = (np.asarray(scale, dtype=np.float32)[detector.geometry.voxel_layer] if scale else None)

    @property
    def geometry(self) -> CylindricalReadout:
        return self.detector.geometry

    # ---------------------------------------------------------------- one chunk
    def sample_chunk(self, energies_mev: np.ndarray, rng: np.random.Generator,
                     return_truth: bool = False) -> np.ndarray | tuple[np.ndarray, ShowerTruth]:
        """Showers for ``energies_mev`` (n,) MeV drawn from ``rng``: (n, V) float32, MeV.

        Spots are distributed over the detector's depth slices with a multinomial draw from the
        Gamma profile integrated over each slice, as GFLASH integrates the profile over a step
        (arXiv:hep-ex/0001020); the radial profile is evaluated at the slice centre and split into
        core / tail spots binomially.
        """
        e_mev = np.asarray(energies_mev, dtype=np.float64).reshape(-1)
        n, n_vox, n_slices = e_mev.size, self.geometry.n_voxels, self._slice_layer.size
        p = self.params
        e_gev = e_mev / 1000.0
        ln_e = np.log(e_gev)
        # shower-level fluctuations: correlated (ln T, ln alpha) and the visible energy
        m_t, m_a, s_t, s_a, rho = longitudinal_moments(p.longitudinal, np.log(e_mev / self._critical))
        z = rng.standard_normal((2, n))
        t_max = np.exp(m_t + s_t * z[0])
        # ln alpha given ln T, truncated to alpha >= alpha_min (inverse CDF of the upper tail)
        cond_mean, cond_sd = m_a + s_a * rho * z[0], s_a * np.sqrt(1.0 - rho**2)
        tail = ndtr((cond_mean - np.log(p.longitudinal.alpha_min)) / cond_sd)  # P(alpha >= alpha_min)
        z_alpha = -ndtri(np.clip(tail * (1.0 - rng.random(n)), 1e-300, 1.0))
        alpha = np.maximum(np.exp(cond_mean + cond_sd * z_alpha), p.longitudinal.alpha_min)
        beta = (alpha - 1.0) / t_max
        e_vis = e_mev * mean_response(p.response, ln_e) * np.maximum(1.0 + resolution(p.response, e_gev) * z[1], 0.0)
        counts = np.maximum(rng.poisson(mean_spot_count(p.spots, e_gev)), 1)
        # spots per depth slice: multinomial over the integrated Gamma profile (+ leakage bin)
        cdf = gammainc(alpha[:, None], beta[:, None] * self._slice_edges[None, :])
        if p.longitudinal.early_a > 0:  # mixture with the early exponential component
            early = early_fraction(p.longitudinal, e_gev)[:, None]
            cdf = (1.0 - early) * cdf + early * (1.0 - np.exp(-self._slice_edges / p.longitudinal.early_length_x0))
        pvals = np.empty((n, n_slices + 1))
        pvals[:, :n_slices] = np.maximum(np.diff(cdf, axis=1), 0.0)
        pvals[:, n_slices] = np.maximum(1.0 - cdf[:, -1], 0.0)
        pvals /= pvals.sum(axis=1, keepdims=True)
        per_slice = rng.multinomial(counts, pvals)[:, :n_slices]
        per_slice[:, ~self._slice_recorded] = 0
        # core / tail split and radii per (shower, slice)
        tau = (self._slice_centres[None, :] / t_max[:, None]).astype(np.float32)
        r_core, r_tail, p_core = radial_shape(p.radial, tau, ln_e.astype(np.float32)[:, None])
        n_core = rng.binomial(per_slice, p_core)
        cell_counts = np.stack([n_core, per_slice - n_core], axis=-1).ravel()
        cell_radius = (np.stack([r_core, r_tail], axis=-1) * self._slice_moliere[None, :, None]).ravel()
        slice_offset = self.lookup.layer_offset[self._slice_layer]
        cell_base = np.arange(n, dtype=np.int64)[:, None] * n_vox + slice_offset[None, :]
        cell_base = np.repeat(cell_base, 2, axis=1).ravel()
        # per spot: radius from the inverse CDF r = R sqrt(u / (1 - u)), uniform azimuth
        radius = np.repeat(cell_radius, cell_counts)
        total = radius.size
        u = rng.random(total, dtype=np.float32)
        radius *= np.sqrt(u / (np.float32(1) - u))
        if self.lookup.uniform:
            local = self.lookup.uniform_local_index(radius, rng.integers(0, self._n_alpha, total, dtype=np.int32))
        else:
            layer = np.repeat(np.repeat(self._slice_layer[None, :], n, 0).repeat(2, 1).ravel(), cell_counts)
            local = self.lookup.local_index(radius, rng.random(total, dtype=np.float32), layer)
        keep = local >= 0
        flat = np.repeat(cell_base, cell_counts)[keep]
        flat += local[keep]
        hits = np.bincount(flat, minlength=n * n_vox)
        if p.spots.energy_shape < 1e5:
            # Gamma(k) spot weights normalised to E_vis. A sum of m Gamma(k) weights is Gamma(m k), so
            # one draw per hit voxel (and one for each shower's spots that leaked) is exact
            k = p.spots.energy_shape
            hit = np.flatnonzero(hits)
            owner = hit // n_vox
            weight = rng.standard_gamma(k * hits[hit])
            leaked = rng.standard_gamma(k * (counts - np.bincount(owner, weights=hits[hit], minlength=n)))
            norm = e_vis / np.maximum(np.bincount(owner, weights=weight, minlength=n) + leaked, 1e-300)
            showers = np.zeros(n * n_vox, dtype=np.float32)
            showers[hit] = weight * norm[owner]
            showers = showers.reshape(n, n_vox)
        else:  # equal spots: the hit count times the spot energy of each shower
            showers = hits.reshape(n, n_vox).astype(np.float32) * (e_vis / counts).astype(np.float32)[:, None]
        if self._voxel_scale is not None:
            showers *= self._voxel_scale
        if return_truth:
            return showers, ShowerTruth(t_max, alpha, beta, e_vis, counts)
        return showers

    # ---------------------------------------------------------------- many chunks
    def chunk_bounds(self, energies_mev: np.ndarray) -> list[tuple[int, int]]:
        """Deterministic chunks ``[(lo, hi), ...]`` of about ``max_spots_per_chunk`` expected spots
        (a chunk starts where the cumulative expected spot count crosses a multiple of it) and at
        most ``MAX_SHOWERS_PER_CHUNK`` showers."""
        e = np.asarray(energies_mev, dtype=np.float64).reshape(-1)
        if e.size == 0:
            return []
        spots = mean_spot_count(self.params.spots, e / 1000.0)
        block = np.floor(np.cumsum(spots) / self.max_spots_per_chunk).astype(np.int64)
        index = np.arange(e.size)
        start = index[(index == 0) | (np.diff(block, prepend=-1) != 0)]
        # split runs longer than MAX_SHOWERS_PER_CHUNK
        stops = np.append(start[1:], e.size)
        cuts = [np.arange(lo, hi, MAX_SHOWERS_PER_CHUNK) for lo, hi in zip(start, stops)]
        starts = np.concatenate(cuts)
        return list(zip(starts.tolist(), np.append(starts[1:], e.size).tolist()))

    def iter_chunks(self, energies_mev: np.ndarray, seed: int, *, progress: bool = False,
                    desc: str = "fastsim") -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(lo, hi, showers (hi - lo, V) float32 MeV)`` in order, computed on worker threads."""
        e = _check_energies(energies_mev)
        bounds = self.chunk_bounds(e)
        seeds = np.random.SeedSequence(int(seed)).spawn(len(bounds))

        def work(i: int) -> np.ndarray:
            lo, hi = bounds[i]
            return self.sample_chunk(e[lo:hi], np.random.Generator(np.random.PCG64(seeds[i])))

        bar = tqdm(total=e.size, desc=desc, unit="shower", disable=not progress, leave=False)
        with ThreadPoolExecutor(max_workers=self.n_workers) as pool:
            pending: list[Future] = []
            nxt = 0
            try:
                for i in range(len(bounds)):
                    while nxt < len(bounds) and len(pending) < 2 * self.n_workers:
                        pending.append(pool.submit(work, nxt))
                        nxt += 1
                    showers = pending.pop(0).result()
                    lo, hi = bounds[i]
                    bar.update(hi - lo)
                    yield lo, hi, showers
            finally:
                for fut in pending:
                    fut.cancel()
                bar.close()

    def sample(self, energies_mev: np.ndarray, seed: int, *, progress: bool = False) -> np.ndarray:
        """Showers for incident ``energies_mev`` ((N,) or (N, 1), MeV): (N, V) float32, MeV."""
        e = _check_energies(energies_mev)
        out = np.empty((e.size, self.geometry.n_voxels), dtype=np.float32)
        for lo, hi, showers in self.iter_chunks(e, seed, progress=progress):
            out[lo:hi] = showers
        return out


def _check_energies(energies_mev: np.ndarray) -> np.ndarray:
    e = np.asarray(energies_mev, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(e) | (e <= 0)
    if np.any(bad):
        raise CaloforgeError(f"incident energies must be finite and > 0 MeV; {int(bad.sum())} are not")
    return e


def simulate(energies_mev: np.ndarray, detector: FastSimDetector, params: FastSimParams, seed: int, *,
             n_workers: int = 2, progress: bool = False) -> np.ndarray:
    """One-call FastSim: showers (N, V) float32 MeV for incident ``energies_mev`` (N,) MeV."""
    return FastSim(detector, params, n_workers=n_workers).sample(energies_mev, seed, progress=progress)
