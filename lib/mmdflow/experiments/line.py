r"""Flows on the line: every scheme against the exact quantile flow, and the inclusive-KL flows on a grid.

Part 1 (:func:`particle_study`, :func:`neural_study`): the Wasserstein gradient flow of
:math:`\mathcal D_K^2(\cdot,\nu)` with the Riesz kernel ``r = 1`` from :math:`\delta_{x_0}` is known exactly
through its quantile function (:mod:`mmdflow.analytic1d`). Each scheme of the library is run toward a 1-D target
(given to the scheme as the ``M`` points :math:`Q_\nu((j-\frac12)/M)`) and measured by the exact :math:`W_2`
distance to the exact flow, and for the particle flow also by the largest error at the nodes
:math:`\max_i|x_{(i)} - Q(t, (i-\frac12)/N)|` (the ``N``-particle system *is* the quantile ODE at these levels).

Part 2 (:func:`grid_references`, :func:`kl_particle_study`): the Wasserstein, Fisher-Rao and WFR flows of the
inclusive :math:`\mathrm{KL}(\nu|\mu)` and their kernel approximations, solved on a grid
(:mod:`mmdflow.grid1d`), next to the particle schemes of :mod:`mmdflow.wfr` (MMD flow, IFT, WFR-GD) at several
bandwidths. The particle schemes use the unnormalised Gaussian kernel
:math:`k = e^{-|x-y|^2/(2\sigma^2)} = \sqrt{2\pi}\sigma\,\mathcal K_\sigma`; their steps are rescaled by
:math:`1/(\sqrt{2\pi}\sigma)` so that one step of size ``h`` advances the flow of the *normalised* kernel
:math:`\mathcal K_\sigma` by ``h`` (the one with a limit as :math:`\sigma\to0`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from .. import analytic1d as a1
from .. import grid1d, schemes
from ..energies import DiscrepancyEnergy, SlicedDiscrepancyEnergy
from ..flows import ParticleFlowConfig, particle_flow, perturbed_dirac
from ..kernels import Gaussian, Riesz
from ..wfr import WFRConfig, by_iteration, wfr_flow
from .targets import NeuralSchedule, neural_config

__all__ = ["TARGETS", "ENERGIES", "ExactLineFlow", "ErrorRow", "particle_study", "neural_study", "observed_order",
           "KLSettings", "KL_PROFILES", "grid_references", "KLRun", "kl_particle_study", "sigma_study",
           "LIMITS"]

#: the 1-D targets of part 1 (names used in the chapter and the records).
TARGETS = {
    "uniform": a1.Uniform(0.0, 1.0),
    "gaussian": a1.Gaussian(0.0, 0.5),
    "mixture": a1.Mixture((a1.Gaussian(-1.0, 0.3), a1.Gaussian(1.0, 0.3)), (0.5, 0.5)),
    "gap": a1.Mixture((a1.Uniform(-1.5, -0.5), a1.Uniform(0.5, 1.5)), (0.5, 0.5)),
    "atom": a1.Mixture((a1.Gaussian(0.0, 0.5), a1.Atom(0.75)), (0.6, 0.4)),
}


@dataclass(frozen=True)
class ExactLineFlow:
    r"""The exact flow of :math:`\mathcal D_K^2(\cdot,\nu)` (r = 1) from :math:`\delta_{x_0}` toward ``target``."""

    target: object
    x0: float

    def quantiles(self, levels: torch.Tensor, times) -> torch.Tensor:
        """``[len(times), n]`` exact quantiles :math:`Q(t, s)` (:func:`mmdflow.analytic1d.quantile_flow`)."""
        return a1.quantile_flow(self.target, self.x0, levels, times)

    def w2(self, x: torch.Tensor, t: float, w: torch.Tensor | None = None) -> float:
        r"""Exact :math:`W_2(\hat\mu, \mu_t)` of a weighted point set (Gauss-Legendre per quantile cell)."""
        return float(a1.w2_discrete_to_quantile(x, lambda s: self.quantiles(s, [t])[0], w))

    def nodal_error(self, x: torch.Tensor, t: float) -> float:
        r""":math:`\max_i|x_{(i)} - Q(t, (i-\frac12)/N)|` for ``N`` equally weighted points."""
        xs = torch.as_tensor(x, dtype=torch.float64).reshape(-1).sort().values
        s = (torch.arange(xs.numel(), dtype=torch.float64) + 0.5) / xs.numel()
        return float((xs - self.quantiles(s, [t])[0]).abs().max())


@dataclass
class ErrorRow:
    """One run measured against the exact flow: scheme (a registry name), the energy it followed (``"exact"``
    sums, or the ``"sliced"`` estimate), target, sizes, and ``{t: W2}`` / ``{t: nodal error}``."""

    scheme: str
    target: str
    n_particles: int
    tau: float
    iterations: int | None
    energy: str = "exact"
    w2: dict = field(default_factory=dict)
    nodal: dict = field(default_factory=dict)
    wall_time: float = float("nan")
    final: torch.Tensor | None = None     # the positions at the last time of ``times`` (not serialised)

    def to_json(self) -> dict:
        return {"scheme": self.scheme, "energy": self.energy, "target": self.target, "n_particles": self.n_particles,
                "tau": self.tau, "iterations": self.iterations, "wall_time": self.wall_time,
                "w2": {format(t, "g"): v for t, v in self.w2.items()},
                "nodal": {format(t, "g"): v for t, v in self.nodal.items()}}


#: the energies a run of :func:`particle_study` can follow: exact sums, or the sliced estimate.
ENERGIES = ("exact", "sliced")


def _energy(target_name: str, m: int, energy: str, seed: int):
    y = a1.as_mixture(TARGETS[target_name]).sample_levels(m)
    if energy not in ENERGIES:
        raise ValueError(f"energy must be one of {ENERGIES}, got {energy!r}")
    if energy == "sliced":
        return SlicedDiscrepancyEnergy(Riesz(1.0), y, generator=torch.Generator().manual_seed(seed))
    return DiscrepancyEnergy(Riesz(1.0), y)


def particle_study(target_name: str, *, x0: float, runs, t_final: float, times, n_target: int, seed: int = 0,
                   energy: str = "exact") -> list[ErrorRow]:
    r"""The library's explicit Euler particle flow (:func:`mmdflow.flows.particle_flow`, float64; the scheme
    ``"particle_flow"``) from the perturbed Dirac at ``x0`` (perturbation ``1e-9``), for each ``(N, tau)`` in
    ``runs``, measured at ``times``.

    ``energy="sliced"``: the particle flow of :class:`mmdflow.energies.SlicedDiscrepancyEnergy` (in 1-D the two
    directions :math:`\pm1` make it exact) instead of the exact sums (``"exact"``). The target is given by its
    ``n_target`` quantile midpoints.
    """
    exact = ExactLineFlow(TARGETS[target_name], x0)
    out = []
    for n, tau in runs:
        discrepancy = _energy(target_name, n_target, energy, seed)
        start = perturbed_dirac(n, 1, centers=torch.tensor([[x0]], dtype=torch.float64),
                                generator=torch.Generator().manual_seed(seed))
        cfg = ParticleFlowConfig.until(t_final, tau=tau, snapshot_dt=min(times))
        traj = particle_flow(discrepancy, start, cfg, progress=False, record_energy=False)
        row = ErrorRow(scheme="particle_flow", target=target_name, n_particles=n, tau=tau, iterations=None,
                       energy=energy, wall_time=traj.wall_time)
        for t in times:
            x = traj.at(t)
            row.w2[t] = exact.w2(x, t)
            row.nodal[t] = exact.nodal_error(x, t)
        row.final = traj.at(max(times)).reshape(-1)
        out.append(row)
    return out


def neural_study(scheme: str, target_name: str, *, x0: float, runs, t_final: float, times, n_particles: int,
                 n_target: int, width: int, lr: float, batch_size: int, seed: int = 0) -> list[ErrorRow]:
    r"""A neural scheme (a registry name of the family ``"neural"``, e.g. ``"neural_backward"``; float32) from the
    exact Dirac at ``x0`` for each ``(tau, iterations)`` in ``runs``, built and run through its registry record
    (:func:`mmdflow.experiments.targets.neural_config`: training batch ``batch_size``, the step batch ``batch1`` of a
    scheme that has one: all particles); :math:`W_2` to the exact flow at ``times`` (multiples of ``tau``)."""
    record = schemes.get_scheme(scheme)
    exact = ExactLineFlow(TARGETS[target_name], x0)
    energy = _energy(target_name, n_target, "exact", seed)
    out = []
    for tau, its in runs:
        cfg = neural_config(scheme, NeuralSchedule(tau=tau, iterations=its, batch_size=batch_size),
                            n_particles=n_particles, tau=tau, n_steps=round(t_final / tau), width=width,
                            hidden_layers=2, lr=lr, snapshot_every=1)
        gen = torch.Generator().manual_seed(seed)
        start = torch.full((n_particles, 1), float(x0))
        traj = record.run(energy, start, cfg, generator=gen, progress=False)
        row = ErrorRow(scheme=scheme, target=target_name, n_particles=n_particles, tau=tau, iterations=its,
                       wall_time=traj.wall_time)
        for t in times:
            row.w2[t] = exact.w2(traj.at(t).to(torch.float64), t)
        out.append(row)
    return out


def observed_order(xs, errors) -> float:
    """Least-squares slope of ``log(error)`` against ``log(x)``: the observed order."""
    lx = torch.log(torch.as_tensor(xs, dtype=torch.float64))
    le = torch.log(torch.as_tensor(errors, dtype=torch.float64))
    lx, le = lx - lx.mean(), le - le.mean()
    return float((lx * le).sum() / (lx * lx).sum())


# ------------------------------------------------------------------------------------------------
# part 2: inclusive KL
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class KLSettings:
    r"""Settings of the inclusive-KL study.

    Attributes:
        n_cells, lo, hi: the grid; t_final, h: end time and step of the particle schemes (``n = t_final/h``
            steps); snapshot_every: particle steps between measurements.
        alpha, beta: weights of the Wasserstein and the Fisher-Rao parts.
        sigmas: kernel bandwidths; n_particles, n_target: sizes of the particle runs.
        kde_bandwidth: bandwidth of the Gaussian KDE of the particles in :math:`\mathrm{KL}(\nu|\hat\mu)`.
    """

    n_cells: int
    lo: float = -5.0
    hi: float = 5.0
    t_final: float
    h: float
    snapshot_every: int
    alpha: float = 1.0
    beta: float = 1.0
    sigmas: tuple
    n_particles: int
    n_target: int
    kde_bandwidth: float

    @property
    def grid(self) -> grid1d.Grid:
        return grid1d.Grid(lo=self.lo, hi=self.hi, n=self.n_cells)

    @property
    def times(self) -> list[float]:
        k = round(self.t_final / self.h)
        return [i * self.h for i in range(0, k + 1, self.snapshot_every)]


#: the grid and particle settings of part 2 per profile (``quick``, ``book``, ``paper``).
KL_PROFILES = {
    "quick": KLSettings(n_cells=200, t_final=2.0, h=0.05, snapshot_every=8, sigmas=(0.5, 0.2),
                        n_particles=150, n_target=300, kde_bandwidth=0.15),
    "book": KLSettings(n_cells=300, t_final=2.0, h=0.025, snapshot_every=16, sigmas=(0.5, 0.25, 0.1),
                       n_particles=300, n_target=600, kde_bandwidth=0.1),
    "paper": KLSettings(n_cells=400, t_final=2.0, h=0.0125, snapshot_every=32, sigmas=(0.5, 0.25, 0.1, 0.05),
                        n_particles=600, n_target=1200, kde_bandwidth=0.08),
}

#: target and start of part 2: a two-component mixture, from a wide Gaussian (whose tails cover the target's).
KL_TARGET = a1.Mixture((a1.Gaussian(-1.0, 0.4), a1.Gaussian(1.2, 0.5)), (0.4, 0.6))
KL_START = a1.Gaussian(0.0, 1.5)

#: for each particle scheme: (its flow for the normalised kernel, its sigma -> 0 limit, the inclusive-KL flow it
#: is meant to approximate), as keyword sets of :func:`mmdflow.grid1d.grid_flow`.
LIMITS = {
    "mmd": ({"transport": "kernel", "reaction": "none"}, {"transport": "l2", "reaction": "none"},
            {"transport": "kl", "reaction": "none"}),
    "ift": ({"transport": "kernel", "reaction": "kl"}, {"transport": "l2", "reaction": "kl"},
            {"transport": "kl", "reaction": "kl"}),
    "wfr": ({"transport": "kernel", "reaction": "kernel_fr"}, {"transport": "l2", "reaction": "l2_fr"},
            {"transport": "kl", "reaction": "kl"}),
}


def _beta(method: str, settings: KLSettings) -> float:
    return 0.0 if method == "mmd" else settings.beta


def grid_references(settings: KLSettings) -> dict:
    r"""Grid solutions at ``settings.times``: ``{name: [T, n]}`` with ``"W-KL"``, ``"FR-KL"``, ``"WFR-KL"`` (the
    inclusive-KL flows), ``"<method>-limit"`` (the :math:`\sigma\to0` limit of each particle scheme) and
    ``"<method>-kernel-<sigma>"`` (its mean-field flow at bandwidth :math:`\sigma`), plus ``"nu"`` and ``"mu0"``."""
    g = settings.grid
    nu = g.cell_average(KL_TARGET.cdf)
    mu0 = g.cell_average(KL_START.cdf)
    times = settings.times
    out = {"nu": nu, "mu0": mu0}
    al, be = settings.alpha, settings.beta
    out["W-KL"] = grid1d.grid_flow(mu0, nu, g, times, alpha=al, transport="kl")
    out["FR-KL"] = grid1d.grid_flow(mu0, nu, g, times, alpha=0.0, beta=be, transport="none", reaction="kl")
    out["WFR-KL"] = grid1d.grid_flow(mu0, nu, g, times, alpha=al, beta=be, transport="kl", reaction="kl")
    for method, (kernel, limit, _) in LIMITS.items():
        b = _beta(method, settings)
        out[f"{method}-limit"] = grid1d.grid_flow(mu0, nu, g, times, alpha=al, beta=b, **limit)
        for sigma in settings.sigmas:
            out[f"{method}-kernel-{sigma:g}"] = grid1d.grid_flow(mu0, nu, g, times, alpha=al, beta=b, sigma=sigma,
                                                                 **kernel)
    return out


def grid_w2(mu: torch.Tensor, ref: torch.Tensor, grid: grid1d.Grid, n_levels: int = 4000) -> float:
    """:math:`W_2` between two grid densities (midpoint rule in the levels)."""
    s = (torch.arange(n_levels, dtype=torch.float64) + 0.5) / n_levels
    return float(torch.sqrt(((grid1d.grid_quantile(mu, grid, s) - grid1d.grid_quantile(ref, grid, s)) ** 2).mean()))


@dataclass
class KLRun:
    """One particle scheme at one bandwidth: times, :math:`\\mathrm{KL}(\\nu|\\hat\\mu_t)` (KDE), and :math:`W_2`
    to its own kernel flow, to its :math:`\\sigma\\to0` limit and to the inclusive-KL flow, at each time."""

    method: str
    sigma: float
    times: list
    kl: list
    w2_kernel: list
    w2_limit: list
    w2_kl: list
    wall_time: float

    def to_json(self) -> dict:
        return dict(self.__dict__)


def kl_particle_study(settings: KLSettings, refs: dict, *, methods=("mmd", "ift", "wfr"), seed: int = 0
                      ) -> list[KLRun]:
    r"""Run :func:`mmdflow.wfr.wfr_flow` for each method and bandwidth and measure it against the grid flows.

    Particles start at the ``N`` quantile midpoints of the start law, the target is given by ``M`` quantile
    midpoints; the Wasserstein step is :math:`\tau = \alpha h/(\sqrt{2\pi}\sigma)`, the MMD proximal weight step
    :math:`\eta = \beta h` (kernel-scale free) and the multiplicative KL step :math:`\beta h/(\sqrt{2\pi}\sigma)`
    (renormalised), so that step ``k`` is time ``k h`` of the normalised-kernel flow (the energy: the discrepancy of
    the Gaussian kernel of bandwidth :math:`\sigma` against the target points; snapshots looked up by iteration,
    :func:`mmdflow.wfr.by_iteration`).
    """
    g = settings.grid
    x0 = a1.as_mixture(KL_START).sample_levels(settings.n_particles)
    y = a1.as_mixture(KL_TARGET).sample_levels(settings.n_target)
    n_steps = round(settings.t_final / settings.h)
    out = []
    for method in methods:
        limit_ref = refs[f"{method}-limit"]
        kl_ref = refs["W-KL"] if method == "mmd" else refs["WFR-KL"]
        for sigma in settings.sigmas:
            scale = math.sqrt(2.0 * math.pi) * sigma
            b = _beta(method, settings)
            cfg = WFRConfig(method=method, n_steps=n_steps, tau=settings.alpha * settings.h / scale,
                            eta=max(b, 1e-12) * settings.h, kl_lr=max(b, 1e-12) * settings.h / scale,
                            kl_normalise="renormalise", loss_every=n_steps, snapshot_every=settings.snapshot_every)
            t0 = time.perf_counter()
            traj = by_iteration(wfr_flow(DiscrepancyEnergy(Gaussian(sigma), y), x0, cfg, progress=False,
                                         generator=torch.Generator().manual_seed(seed)))
            wall = time.perf_counter() - t0
            kernel_ref = refs[f"{method}-kernel-{sigma:g}"]
            run = KLRun(method=method, sigma=sigma, times=[], kl=[], w2_kernel=[], w2_limit=[], w2_kl=[],
                        wall_time=wall)
            for k, t in enumerate(settings.times):
                idx = traj.index_of(round(t / settings.h))
                x, w = traj.positions[idx], traj.weights[idx]
                dens = grid1d.kde(x, g, settings.kde_bandwidth, w)
                run.times.append(t)
                run.kl.append(float(grid1d.kl_divergence(refs["nu"], dens, g.dx)))

                def w2(ref, x=x, w=w, k=k):
                    return float(a1.w2_discrete_to_quantile(x, lambda s: grid1d.grid_quantile(ref[k], g, s), w))

                run.w2_kernel.append(w2(kernel_ref))
                run.w2_limit.append(w2(limit_ref))
                run.w2_kl.append(w2(kl_ref))
            out.append(run)
    return out


def sigma_study(settings: KLSettings, refs: dict, t: float | None = None) -> dict:
    r"""Grid only: :math:`W_2` at time ``t`` (default: the end) between each method's kernel flow at every
    bandwidth and (a) its :math:`\sigma\to0` limit, (b) the inclusive-KL flow. ``{method: {sigma: (a, b)}}``."""
    g = settings.grid
    k = len(settings.times) - 1 if t is None else settings.times.index(t)
    out = {}
    for method in LIMITS:
        kl_ref = refs["W-KL"] if method == "mmd" else refs["WFR-KL"]
        out[method] = {s: (grid_w2(refs[f"{method}-kernel-{s:g}"][k], refs[f"{method}-limit"][k], g),
                           grid_w2(refs[f"{method}-kernel-{s:g}"][k], kl_ref[k], g)) for s in settings.sigmas}
    return out
