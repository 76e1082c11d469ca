r"""The 100-dimensional Gaussian-mixture study of the IFT chapter (chapter 6): schemes, stored runs, size sweep.

The target is :func:`mmdflow.data.mixture_100d` (the official IFT code's construction), the source
:math:`N(0, I_{100})`, the kernel Gaussian with :math:`\sigma = 10` (:math:`e^{-|x-y|^2/200}`). The step sizes
follow the authors' learning rates for :math:`N = 10^4`: position step :math:`\tau_\mathrm{eff} = 2\,\mathrm{lr}/N`
with :math:`\mathrm{lr} = 10^4` at :math:`N = 10^4`, i.e. :math:`\tau = 2` (kept for every :math:`N`,
:func:`mmdflow.wfr.authors_lr_to_tau`); projected-gradient weight step :math:`\mathrm{lr}' = 10^{-3}` at
:math:`N = 10^4`, scaled by :math:`10^4/N` so that the per-step change of the weight density :math:`Nw_i` is
theirs (label :data:`IFT_LITERAL` keeps the literal :math:`10^{-3}`); KL learning rate 1; noise level 2
switched off after 4000 of 9001 iterations (the same fraction of shorter runs).

:func:`hd_schemes` gives the schemes as ``{label: WFRConfig}`` (each naming its ``method``) for
:func:`mmdflow.experiments.run_seeds`; :func:`run_hd` runs one (label, N, seed) and returns a :class:`HDRun`
(held-out :math:`\mathrm{MMD}^2`, effective sample size and zero-weight share along the run, the final energy
distance and :math:`\mathrm{MMD}^2` at bandwidth :data:`HD_SIGMA_ALT` against an independent sample, wall time
and provenance); :func:`mmdflow.experiments.sweep.run_ift_sweep` runs many of them as Dask tasks into a results file;
:func:`load_results` reads the stored ones (``benchmarks/results/ift_*.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from .._checks import check_int
from ..data.mixtures import mixture_100d
from ..energies import DiscrepancyEnergy
from ..kernels import Gaussian
from ..runtime import load_stored_results, provenance
from ..wfr import NoiseSchedule, WFRConfig, wfr_flow
from .seeds import run_seeds

__all__ = ["HD_SIGMA", "HD_SIGMA_ALT", "HD_TAU", "MMD_FLOW", "NOISE_AUTHORS", "NOISE_ARBEL", "IFT_WEIGHTED",
           "IFT_PURE", "IFT_LITERAL", "WFR_GD", "HD_LABELS", "hd_schemes", "HDRun", "run_hd",
           "results_to_json", "results_from_json", "load_results", "finals_by_size", "SizeSummary", "size_summary",
           "as_seed_runs",
           "DecayRun", "fitted_rate", "decay_support_case", "decay_study", "Ordering", "ordering", "first_size_below"]

#: bandwidth of the training kernel (the authors' :math:`e^{-|x-y|^2/200}`).
HD_SIGMA = 10.0
#: bandwidth of the second, held-out Gaussian kernel (twice the training one: about the target's median distance
#: scale, so that near-by distinct points count as close).
HD_SIGMA_ALT = 20.0
#: position step :math:`\tau_\mathrm{eff} = 2\,\mathrm{lr}/N` of the authors (lr = 1e4 at N = 1e4).
HD_TAU = 2.0

#: display names of the compared schemes (the keys of the records and the legends).
MMD_FLOW = "MMD flow"
#: display name of a compared scheme.
NOISE_AUTHORS = "noisy MMD flow (authors)"
#: display name of a compared scheme.
NOISE_ARBEL = "noisy MMD flow (Arbel)"
#: display name of a compared scheme.
IFT_WEIGHTED = "IFT, weighted step (authors)"
#: display name of a compared scheme.
IFT_PURE = "IFT, pure step"
#: display name of a compared scheme.
IFT_LITERAL = "IFT, weighted, lr' = 1e-3"
#: display name of a compared scheme.
WFR_GD = "WFR GD (KL step, weighted)"
#: every scheme of :func:`hd_schemes`, in plotting order.
HD_LABELS = (MMD_FLOW, NOISE_AUTHORS, NOISE_ARBEL, IFT_WEIGHTED, IFT_PURE, IFT_LITERAL, WFR_GD)


def hd_schemes(n: int, n_steps: int, *, labels: Sequence[str] | None = None,
               loss_every: int | None = None) -> dict[str, WFRConfig]:
    r"""The 100-d schemes at ``n`` particles and ``n_steps`` iterations, ``{label: WFRConfig}`` (each naming its
    ``method``), for :func:`mmdflow.experiments.run_seeds` with the kernel :class:`~mmdflow.kernels.Gaussian` ``(HD_SIGMA)``.

    * :data:`MMD_FLOW`: the MMD flow, :math:`\tau = 2`;
    * :data:`NOISE_AUTHORS` / :data:`NOISE_ARBEL`: noisy MMD flow, level 2 until ``4000/9001`` of the run, the
      official code's update / Arbel et al.'s (:class:`mmdflow.wfr.NoiseSchedule` ``variant``);
    * :data:`IFT_WEIGHTED`: IFT with the authors' weight-scaled position step and one projected-gradient weight step,
      :math:`\mathrm{lr}' = 10^{-3}\cdot 10^4/N`; :data:`IFT_PURE`: the same with the position step of the PDE
      (``position_step="pure"``); :data:`IFT_LITERAL`: weighted, :math:`\mathrm{lr}' = 10^{-3}`;
    * :data:`WFR_GD`: weighted position step and the multiplicative KL weight step, learning rate 1.

    ``loss_every`` (default ``max(1, n_steps // 200)``): held-out loss and weight statistics every this many steps.
    """
    check_int(n, "n", 1)
    check_int(n_steps, "n_steps", 1)
    labels = HD_LABELS if labels is None else tuple(labels)
    bad = [lb for lb in labels if lb not in HD_LABELS]
    if bad:
        raise ValueError(f"unknown 100-d scheme label(s) {bad}; choose from {HD_LABELS}")
    base = dict(n_steps=n_steps, tau=HD_TAU, snapshot_every=None,
                loss_every=check_int(loss_every, "loss_every", 1) if loss_every else max(1, n_steps // 200))
    off = int(n_steps * 4000 / 9001)
    lr = 1e-3 * 1e4 / n
    all_schemes = {
        MMD_FLOW: WFRConfig(method="mmd", **base),
        NOISE_AUTHORS: WFRConfig(method="mmd_noise", **base, noise=NoiseSchedule(beta0=2.0, off_after=off,
                                                                                 variant="authors")),
        NOISE_ARBEL: WFRConfig(method="mmd_noise", **base, noise=NoiseSchedule(beta0=2.0, off_after=off,
                                                                               variant="arbel")),
        IFT_WEIGHTED: WFRConfig(method="ift", **base, position_step="weighted", weight_step="pgd", pgd_lr=lr),
        IFT_PURE: WFRConfig(method="ift", **base, position_step="pure", weight_step="pgd", pgd_lr=lr),
        IFT_LITERAL: WFRConfig(method="ift", **base, position_step="weighted", weight_step="pgd", pgd_lr=1e-3),
        WFR_GD: WFRConfig(method="wfr", **base, position_step="weighted", kl_lr=1.0),
    }
    return {lb: all_schemes[lb] for lb in labels}


@dataclass(frozen=True, kw_only=True)
class HDRun:
    r"""One 100-d run (:func:`run_hd`).

    Attributes:
        label, n, seed, n_steps: the scheme (:data:`HD_LABELS`), particles, seed, iterations.
        steps, loss: iterations ``[L]`` and held-out :math:`\mathrm{MMD}^2` (training kernel) there.
        ess, zero_fraction: effective sample size and zero-weight share ``[L]`` (:func:`mmdflow.metrics.weight_statistics`).
        energy_distance, mmd2_alt: final scores against an independent sample (:func:`mmdflow.metrics.heldout_scores`,
            bandwidth :data:`HD_SIGMA_ALT`).
        wall: seconds of the run; provenance: :func:`mmdflow.runtime.provenance` of the run.
    """

    label: str
    n: int
    seed: int
    n_steps: int
    steps: list[float]
    loss: list[float]
    ess: list[float]
    zero_fraction: list[float]
    energy_distance: float
    mmd2_alt: float
    wall: float
    provenance: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int, int, int]:
        """``(label, n, seed, n_steps)``: what identifies a run in a results file."""
        return (self.label, self.n, self.seed, self.n_steps)

    @property
    def final(self) -> float:
        r"""The final held-out :math:`\mathrm{MMD}^2`."""
        return self.loss[-1]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "HDRun":
        return cls(**data)


def run_hd(label: str, n: int, seed: int, n_steps: int, *, device=None, dtype=torch.float32,
           loss_every: int | None = None) -> HDRun:
    """Run one 100-d scheme (:func:`hd_schemes`) for one seed with :func:`mmdflow.experiments.run_seeds`
    (initial particles :math:`N(0, I)` of the seed, held-out sample of ``n`` points, second scores at
    :data:`HD_SIGMA_ALT`)."""
    schemes = hd_schemes(n, n_steps, labels=[label], loss_every=loss_every)
    r = run_seeds(schemes, mixture_100d(), [seed], n, kernel=Gaussian(HD_SIGMA), n_test=n, center=[0.0] * 100,
                  dtype=dtype, device=device, sigma_alt=HD_SIGMA_ALT)[label]
    wall = float(r.wall[0])
    return HDRun(label=label, n=n, seed=seed, n_steps=n_steps, steps=r.steps.tolist(), loss=r.loss[0].tolist(),
                 ess=r.ess[0].tolist(), zero_fraction=r.zero_fraction[0].tolist(),
                 energy_distance=float(r.energy_distance[0]), mmd2_alt=float(r.mmd2_alt[0]), wall=wall,
                 provenance=provenance(wall_time=wall))


def results_to_json(runs: Iterable[HDRun]) -> list[dict]:
    """Runs as JSON-ready dicts."""
    return [r.to_json() for r in runs]


def results_from_json(data: list[dict]) -> list[HDRun]:
    """Inverse of :func:`results_to_json`."""
    return [HDRun.from_json(d) for d in data]


def load_results(name: str = "ift_100d_book.json") -> list[HDRun]:
    """The stored runs (:func:`mmdflow.runtime.stored_results_path`) as :class:`HDRun` objects."""
    return results_from_json(load_stored_results(name, producer="benchmarks/bench_ift.py", kind="ift_100d"))


def finals_by_size(runs: Iterable[HDRun], n_steps: int | None = None) -> dict[str, dict[int, list[float]]]:
    r"""``{label: {N: [final held-out MMD^2 per seed, by seed]}}`` (runs with ``n_steps`` iterations, if given),
    labels in the order of :data:`HD_LABELS`, sizes increasing."""
    out: dict[str, dict[int, list[tuple[int, float]]]] = {}
    for r in runs:
        if n_steps is None or r.n_steps == n_steps:
            out.setdefault(r.label, {}).setdefault(r.n, []).append((r.seed, r.final))
    return {lb: {n: [v for _, v in sorted(out[lb][n])] for n in sorted(out[lb])} for lb in HD_LABELS if lb in out}


class SizeSummary(NamedTuple):
    """One scheme at one ``N`` (:func:`size_summary`): mean and standard deviation (``ddof=0``) of the final held-out
    loss over ``n_seeds`` seeds, and the ratio of the mean to the baseline's mean at the same ``N`` (``nan`` when the
    baseline has no run there)."""

    mean: float
    std: float
    n_seeds: int
    ratio: float


def size_summary(finals: Mapping[str, Mapping[int, Sequence[float]]], baseline: str
                 ) -> dict[str, dict[int, SizeSummary]]:
    """``{label: {N: SizeSummary}}`` of :func:`finals_by_size`' ``{label: {N: [final per seed]}}``, in its order."""
    out = {}
    for label, by_n in finals.items():
        out[label] = {}
        for n in sorted(by_n):
            v = np.asarray(by_n[n], dtype=float)
            ratio = v.mean() / np.mean(finals[baseline][n]) if n in finals.get(baseline, {}) else float("nan")
            out[label][n] = SizeSummary(float(v.mean()), float(v.std()), len(v), float(ratio))
    return out


def as_seed_runs(runs: Iterable[HDRun], n: int, n_steps: int | None = None) -> dict:
    """The stored runs at ``n`` particles as ``{label: SeedRuns}`` (seeds in increasing order, labels in the order of
    :data:`HD_LABELS`) for the plots and tables of :mod:`mmdflow.plots.wfr`. No trajectory is stored: ``first`` is
    ``None``."""
    from .seeds import SeedRuns

    by: dict[str, list[HDRun]] = {}
    for r in runs:
        if r.n == n and (n_steps is None or r.n_steps == n_steps):
            by.setdefault(r.label, []).append(r)
    out = {}
    for lb in HD_LABELS:
        if lb not in by:
            continue
        rs = sorted(by[lb], key=lambda r: r.seed)
        t = lambda key: torch.tensor([getattr(r, key) for r in rs], dtype=torch.float64)  # noqa: E731
        out[lb] = SeedRuns(steps=torch.tensor(rs[0].steps, dtype=torch.float64), loss=t("loss"), wall=t("wall"),
                           first=None, ess=t("ess"), zero_fraction=t("zero_fraction"),
                           energy_distance=t("energy_distance"), mmd2_alt=t("mmd2_alt"), sigma_alt=HD_SIGMA_ALT)
    return out


# ----------------------------------------------------------------------------------------------
# the decay claim MMD(mu_t, pi) <= e^{-beta t} MMD(mu_0, pi)
# ----------------------------------------------------------------------------------------------
class DecayRun(NamedTuple):
    r"""One run of :func:`decay_study`.

    Attributes:
        weight_step: ``"prox"`` or ``"pgd"``; beta, tau: :math:`\beta` (with :math:`\eta = \beta h`) and the position
            step :math:`\tau = \alpha h`; h: the time step.
        t: times ``[L]`` (:math:`\ell h`); mmd2: :math:`\mathrm{MMD}^2(\mu_{\ell}, \nu)` ``[L]``.
        rate: fitted rate :func:`fitted_rate` (of :math:`\mathrm{MMD}`, per unit time).
        holds: whether the implicit-Euler bound :math:`\mathrm{MMD}^2(\mu_\ell, \nu) \le (1+\beta h)^{-2\ell}
            \mathrm{MMD}^2(\mu_0, \nu)` holds at every recorded step up to ``roundoff``.
        holds_continuous: the same for :math:`e^{-2\beta t}\mathrm{MMD}^2(\mu_0, \nu)`, the bound of the continuous
            flow (the limit :math:`h \to 0` of the first; the exact step meets it only up to :math:`O(h)`).
        excess: the largest :math:`\mathrm{MMD}^2(\mu_\ell,\nu) - (1+\beta h)^{-2\ell}\mathrm{MMD}^2(\mu_0,\nu)`
            over the steps (negative: below the bound everywhere).
        roundoff: the float rounding bound of the V-statistic :math:`\mathrm{MMD}^2 = c^\top K c`,
            :math:`2(N+M)\,\varepsilon\,\lVert c\rVert_1^2 \max K` with :math:`c = (w, -p)`, :math:`\lVert c\rVert_1 = 2`
            and :math:`\varepsilon` the machine epsilon (the dot-product error bound for sums of length
            :math:`N+M`); an excess below it is not resolved by the arithmetic.
        deviation: the largest relative gap :math:`|\mathrm{MMD}_\ell/((1+\beta h)^{-\ell}\mathrm{MMD}_0) - 1|` over the
            steps where the bound's square is above ``1e4 * roundoff`` (0 when the bound is an equality, as for
            the exact step without transport).
    """

    weight_step: str
    beta: float
    tau: float
    h: float
    t: torch.Tensor
    mmd2: torch.Tensor
    rate: float
    holds: bool
    holds_continuous: bool
    excess: float = 0.0
    roundoff: float = 0.0
    deviation: float = 0.0


def fitted_rate(t: torch.Tensor, mmd2: torch.Tensor, *, rel_floor: float = 1e-5) -> float:
    r"""Least-squares rate :math:`\hat\beta` of :math:`\mathrm{MMD}(t)\approx C e^{-\hat\beta t}`: minus the slope of
    :math:`\tfrac12\log\mathrm{MMD}^2` against ``t`` ``[L]``, over the points with
    :math:`\mathrm{MMD} > \mathrm{rel\_floor}\cdot\mathrm{MMD}(0)` (below, float64 round-off dominates)."""
    m = mmd2.double().clamp_min(0).sqrt()
    keep = m > rel_floor * m[0]
    tt, lm = t.double()[keep], m[keep].log()
    if tt.numel() < 2:
        raise ValueError("fitted_rate needs at least two points above the floor")
    tc = tt - tt.mean()
    return -float((tc * (lm - lm.mean())).sum() / (tc * tc).sum())


def decay_support_case(dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The case where the theorem's discrete counterpart holds: 36 particles on the unit grid ``[36, 2]``, the target
    the uniform measure on 8 of them ``[8, 2]`` (the target lies in the particle support)."""
    grid = torch.cartesian_prod(*(torch.arange(6, dtype=dtype),) * 2)
    return grid, grid[[1, 7, 8, 14, 20, 27, 33, 34]].clone()


def decay_study(cases: Sequence[tuple[str, float, float]], *, h: float = 0.1, n_steps: int = 40, sigma: float = 0.8,
                pgd_lr: float = 0.1) -> list[DecayRun]:
    r"""IFT (``method="ift"``, pure position step, :func:`mmdflow.wfr.wfr_flow`) on :func:`decay_support_case` for the
    discrepancy of the Gaussian kernel of bandwidth ``sigma`` against the target, scored by its ``info["loss"]``
    (:math:`\mathrm{MMD}^2` against the target), for each ``(weight_step, beta, tau)`` of ``cases``: exact proximal step
    with :math:`\eta = \beta h`, or one projected-gradient step with ``pgd_lr`` (independent of :math:`\beta`).
    Returns one :class:`DecayRun` per case."""
    x0, target = decay_support_case()
    energy = DiscrepancyEnergy(Gaussian(sigma), target)
    eps = torch.finfo(x0.dtype).eps
    roundoff = 2 * (len(x0) + len(target)) * eps * 2.0 ** 2     # K <= 1 (Gaussian); ||(w, -p)||_1 = 2
    out = []
    for weight_step, beta, tau in cases:
        cfg = WFRConfig(method="ift", n_steps=n_steps, tau=tau, eta=beta * h, weight_step=weight_step,
                        pgd_lr=pgd_lr, qp_tol=1e-14)
        tr = wfr_flow(energy, x0, cfg, progress=False)
        t, m2 = tr.info["loss_steps"] * h, tr.info["loss"]
        b2 = m2[0] * (1 + beta * h) ** (-2 * t / h)
        b2c = m2[0] * torch.exp(-2 * beta * t)
        holds = bool((m2 <= b2 + roundoff).all())
        holds_c = bool((m2 <= b2c + roundoff).all())
        judged = b2 > 1e4 * roundoff        # there the round-off moves MMD by < 5e-5 relative
        dev = float((m2.clamp_min(0)[judged].sqrt() / b2[judged].sqrt() - 1).abs().max())
        out.append(DecayRun(weight_step, float(beta), float(tau), float(h), t, m2, fitted_rate(t, m2), holds, holds_c,
                            float((m2 - b2).max()), roundoff, dev))
    return out


def prox_agreement(etas: Sequence[float] = (0.05, 0.5, 5.0), *, seed: int = 0) -> float:
    r"""The largest difference, over ``etas``, between the MMD proximal weight step solved as a QP
    (:func:`mmdflow.wfr.mmd_prox_weights`, active set) and the closed-form inclusive-KL proximal step
    :math:`(w^{\rm old} + \eta p)/(1+\eta)` (:func:`mmdflow.wfr.inclusive_kl_prox`), on the 36-point grid of
    :func:`decay_support_case` with random old weights and random target weights ``p`` on the same points
    (Zhu and Mielke: on a common support the two steps coincide)."""
    from ..wfr import inclusive_kl_prox, mmd_prox_weights

    x, _ = decay_support_case()
    g = torch.Generator().manual_seed(seed)
    w_old = torch.softmax(torch.randn(len(x), generator=g, dtype=x.dtype), 0)
    p = torch.softmax(torch.randn(len(x), generator=g, dtype=x.dtype), 0)
    kernel = Gaussian(0.8)
    worst = 0.0
    for eta in etas:
        w_mmd, _ = mmd_prox_weights(x, w_old, x, kernel, eta, v=p, tol=1e-15)
        worst = max(worst, float((w_mmd - inclusive_kl_prox(w_old, p, eta)).abs().max()))
    return worst


class Ordering(NamedTuple):
    """Result of :func:`ordering`: one scheme against a baseline at one ``N``, seeds paired (same start, same
    held-out sample).

    Attributes:
        n: particles; n_seeds: paired seeds; ratio_min, ratio_max: range over the seeds of the final-loss ratio
        scheme / baseline; below_every_seed: whether the ratio is below 1 on every seed.
    """

    n: int
    n_seeds: int
    ratio_min: float
    ratio_max: float
    below_every_seed: bool


def ordering(runs: Iterable[HDRun], method: str, baseline: str, n_steps: int | None = None) -> list[Ordering]:
    """Per ``N`` (increasing), the final held-out loss of ``method`` against ``baseline`` on the seeds both have."""
    by = {}
    for r in runs:
        if n_steps is None or r.n_steps == n_steps:
            by[(r.label, r.n, r.seed)] = r.final
    sizes = sorted({n for (lb, n, _) in by if lb == method})
    out = []
    for n in sizes:
        seeds = sorted(s for (lb, m, s) in by if lb == method and m == n and (baseline, n, s) in by)
        if not seeds:
            continue
        ratios = [by[(method, n, s)] / by[(baseline, n, s)] for s in seeds]
        out.append(Ordering(n, len(seeds), min(ratios), max(ratios), all(q < 1 for q in ratios)))
    return out


def first_size_below(orders: Sequence[Ordering]) -> int | None:
    """The smallest ``N`` of ``orders`` from which on (at it and at every larger ``N``) the scheme is below the
    baseline on every seed; ``None`` if there is none."""
    first = None
    for o in orders:
        if o.below_every_seed:
            first = o.n if first is None else first
        else:
            first = None
    return first
