r"""Multi-seed runs of the weighted-particle flows (chapter 6): several schemes, several seeds, one table.

For each seed ``s`` every scheme starts from the same initial particles
:math:`x^0_i \sim N(\mathrm{center}, \mathrm{scale}^2 I)` and is scored against the same held-out target
sample, so the schemes are compared on equal terms (Gladin, Dvurechensky, Mielke, Zhu, NeurIPS 2024: IFT
against the MMD flow of Arbel et al. 2019, its noisy variant and WFR GD). One scheme is a
:class:`~mmdflow.wfr.WFRConfig` naming its ``method`` for :func:`mmdflow.wfr.wfr_flow` (the energy: the discrepancy
:math:`\mathcal D_K^2(\cdot, \hat\nu)` of the run's kernel against the held-out sample :math:`\hat\nu`; the training
batches: fresh samples of the target); its results over the seeds are one
:class:`SeedRuns` (held-out :math:`\mathrm{MMD}^2` ``[S, L]``, the effective sample size and the share of
zero-weight particles ``[S, L]`` at the same iterations (:func:`mmdflow.metrics.weight_statistics`), optionally the
final energy distance and :math:`\mathrm{MMD}^2` at a second bandwidth against an independent sample
(:func:`mmdflow.metrics.heldout_scores`), run times ``[S]``, the first seed's trajectory).
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import torch

from .._checks import check_int, check_positive
from ..data.mixtures import initial_particles
from ..energies import DiscrepancyEnergy
from ..kernels import RadialKernel
from ..metrics import heldout_scores, weight_statistics
from ..trajectory import Trajectory
from ..wfr import METHODS, WFRConfig, by_iteration, wfr_flow

__all__ = ["SeedRuns", "run_seeds", "check_seed_runs", "FinalLoss", "summarise_final", "FinalRatio", "compare_final",
           "MeanStd", "FinalScores", "final_scores", "TEST_SEED_OFFSET", "RUN_SEED_OFFSET", "SCORE_SEED_OFFSET"]

#: the held-out sample of seed ``s`` is drawn with ``torch.Generator().manual_seed(s + TEST_SEED_OFFSET)``.
TEST_SEED_OFFSET = 10**6
#: the minibatches and noise of every scheme at seed ``s`` come from the seed ``s + RUN_SEED_OFFSET``.
RUN_SEED_OFFSET = 2 * 10**6
#: the independent sample of the second metrics (:func:`mmdflow.metrics.heldout_scores`) of seed ``s``.
SCORE_SEED_OFFSET = 3 * 10**6


class SeedRuns(NamedTuple):
    r"""Results of :func:`run_seeds` for one scheme.

    Attributes:
        steps: ``[L]`` iteration counts at which the loss was recorded.
        loss: ``[S, L]`` held-out :math:`\mathrm{MMD}^2` per seed (float64).
        wall: ``[S]`` seconds per run (float64).
        first: the full :class:`~mmdflow.trajectory.Trajectory` of the first seed, its snapshots' times the iteration
            counts (:func:`mmdflow.wfr.by_iteration`), like ``steps``.
        ess: ``[S, L]`` effective sample size :math:`1/\sum_i w_i^2` at ``steps``.
        zero_fraction: ``[S, L]`` share of zero-weight particles at ``steps``.
        energy_distance: ``[S]`` final energy distance to an independent target sample (``None`` if not scored).
        mmd2_alt: ``[S]`` final :math:`\mathrm{MMD}^2` at the bandwidth ``sigma_alt`` to that sample (or ``None``).
        sigma_alt: the second bandwidth (or ``None``).
        held_out: the first seed's held-out sample ``[n_test, d]`` (the energy's target of its runs), or ``None``.
    """

    steps: torch.Tensor
    loss: torch.Tensor
    wall: torch.Tensor
    first: Trajectory
    ess: torch.Tensor | None = None
    zero_fraction: torch.Tensor | None = None
    energy_distance: torch.Tensor | None = None
    mmd2_alt: torch.Tensor | None = None
    sigma_alt: float | None = None
    held_out: torch.Tensor | None = None

    @property
    def final(self) -> torch.Tensor:
        r"""The final held-out :math:`\mathrm{MMD}^2` of every seed, ``[S]``."""
        return self.loss[:, -1]


class FinalLoss(NamedTuple):
    """Mean and standard deviation over the seeds of one scheme's final held-out loss (:func:`summarise_final`)."""

    mean: float
    std: float


def check_seed_runs(results) -> Mapping[str, SeedRuns]:
    """``results`` unchanged if it is a mapping ``{label: SeedRuns}`` (from :func:`run_seeds`), else a ``TypeError``
    naming the offending label."""
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a mapping label -> SeedRuns (mmdflow.experiments.run_seeds), "
                        f"got {type(results).__name__}")
    for label, r in results.items():
        if not isinstance(r, SeedRuns):
            raise TypeError(f"results[{label!r}] must be a SeedRuns (mmdflow.experiments.run_seeds), "
                            f"got {type(r).__name__}")
    return results


def summarise_final(results: Mapping[str, SeedRuns], digits: int = 2) -> dict[str, FinalLoss]:
    """``{label: FinalLoss(mean, std)}`` of the final held-out loss over the seeds (numpy ``std``, ``ddof=0``),
    rounded to ``digits`` significant digits."""
    out = {}
    for label, r in check_seed_runs(results).items():
        final = r.final.detach().cpu().numpy()
        out[label] = FinalLoss(float(f"{final.mean():.{digits}g}"), float(f"{final.std():.{digits}g}"))
    return out


class FinalRatio(NamedTuple):
    """The final held-out loss of one scheme against a baseline, seeds paired (:func:`compare_final`).

    Attributes:
        ratio_min, ratio_max: range over the seeds of the ratio scheme / baseline; below_every_seed: whether the ratio
        is below 1 on every seed; zero_fraction: the scheme's share of zero-weight particles at the end of its first
        seed (``None`` without its trajectory or weights).
    """

    ratio_min: float
    ratio_max: float
    below_every_seed: bool
    zero_fraction: float | None


def compare_final(results: Mapping[str, SeedRuns], method: str, baseline: str) -> FinalRatio:
    """``method`` against ``baseline`` in ``results`` (``{label: SeedRuns}``, the same seeds): the per-seed ratio of
    the final held-out losses and the zero-weight share of ``method``'s first seed."""
    a, b = check_seed_runs(results)[method], results[baseline]
    ratio = a.final.detach().cpu().numpy() / b.final.detach().cpu().numpy()
    w = None if a.first is None else a.first.weights
    zero = None if w is None else float((w[-1] == 0).double().mean())
    return FinalRatio(float(ratio.min()), float(ratio.max()), bool((ratio < 1).all()), zero)


class MeanStd(NamedTuple):
    """Mean and standard deviation (numpy ``std``, ``ddof=0``) over the seeds, unrounded."""

    mean: float
    std: float


class FinalScores(NamedTuple):
    r"""The final scores of one scheme on one target, over the seeds (:func:`final_scores`).

    Attributes:
        target, label: the target's and the scheme's names.
        loss: held-out :math:`\mathrm{MMD}^2` (training kernel); energy_distance, mmd2_alt: the second scores
            (``None`` if not scored); ess, zero_fraction: mean final effective sample size and zero-weight share
            (``None`` without weight statistics); rank, rank_energy: rank of the scheme on its target by the mean
            training loss and by the mean energy distance (1 = best; ``None`` without energy distances).
    """

    target: str
    label: str
    loss: MeanStd
    energy_distance: MeanStd | None
    mmd2_alt: MeanStd | None
    ess: float | None
    zero_fraction: float | None
    rank: int
    rank_energy: int | None


def final_scores(results_by_target: Mapping[str, Mapping[str, SeedRuns]]) -> list[FinalScores]:
    """One :class:`FinalScores` per target and scheme of ``{target: {label: SeedRuns}}``, in their order."""
    def np_(t):
        return t.detach().cpu().numpy()

    def ms(t):
        return None if t is None else MeanStd(float(np_(t).mean()), float(np_(t).std()))

    out = []
    for target, res in results_by_target.items():
        res = check_seed_runs(res)
        finals = {lb: np_(r.final) for lb, r in res.items()}
        eds = {lb: np_(r.energy_distance) for lb, r in res.items() if r.energy_distance is not None}
        rank = {lb: k + 1 for k, lb in enumerate(sorted(finals, key=lambda lb: finals[lb].mean()))}
        rank_ed = {lb: k + 1 for k, lb in enumerate(sorted(eds, key=lambda lb: eds[lb].mean()))}
        for lb, r in res.items():
            out.append(FinalScores(target, lb, ms(r.final), ms(r.energy_distance), ms(r.mmd2_alt),
                                   None if r.ess is None else float(np_(r.ess)[:, -1].mean()),
                                   None if r.zero_fraction is None else float(np_(r.zero_fraction)[:, -1].mean()),
                                   rank[lb], rank_ed.get(lb)))
    return out


def _check_runs(runs) -> dict[str, WFRConfig]:
    """``runs`` as a dict ``{label: WFRConfig}``, every config naming its scheme (``method`` from :data:`METHODS`);
    a clear error naming the label otherwise."""
    if not isinstance(runs, Mapping) or len(runs) == 0:
        raise ValueError(f"runs must be a non-empty mapping label -> WFRConfig(method=...), got {runs!r}")
    out = {}
    for label, config in runs.items():
        if not isinstance(config, WFRConfig):
            raise TypeError(f"runs[{label!r}] must be a WFRConfig naming its method "
                            f"(mmdflow.wfr.WFRConfig(method=..., ...)), got {type(config).__name__}: {config!r}")
        if config.method is None:
            raise ValueError(f"runs[{label!r}]: the WFRConfig names no method; give method=one of {METHODS}")
        out[label] = config
    return out


def run_seeds(runs: Mapping[str, WFRConfig], target: Callable, seeds: Sequence[int], n_particles: int, *,
              kernel: RadialKernel, n_test: int = 1000, center: Sequence[float] = (5.0, 5.0), scale: float = 1.0, dtype=torch.float64,
              device=None, progress: bool = False, sigma_alt: float | None = None) -> dict[str, SeedRuns]:
    r"""Run several schemes over several seeds on the same initial particles and held-out sample per seed.

    For seed ``s``: the initial particles :math:`N(\mathrm{center}, \mathrm{scale}^2I)` ``[N, d]``
    (:func:`mmdflow.data.initial_particles`) come from ``torch.Generator().manual_seed(s)``, the held-out
    sample (``n_test`` points) from the seed ``s + TEST_SEED_OFFSET``, and each scheme's minibatches and
    noise from a generator seeded with ``s + RUN_SEED_OFFSET``. Each run is :func:`mmdflow.wfr.wfr_flow` for the energy
    :math:`\mathcal D_K^2(\cdot, \hat\nu)` of ``kernel`` against the held-out sample :math:`\hat\nu` (its loss, the
    held-out :math:`\mathrm{MMD}^2`, is ``info["loss"]``) with ``target`` as the sampler of the training batches.

    Args:
        runs: ``{label: WFRConfig}``, each config naming its scheme (``method`` from :data:`mmdflow.wfr.METHODS`).
        target: a callable ``sample_target(n, generator) -> [n, d]``.
        seeds: the seeds (non-empty); n_particles: particles per run.
        kernel: the kernel :math:`K` of every scheme (e.g. :class:`mmdflow.kernels.Gaussian`).
        n_test, center, scale, dtype, device: held-out sample size and the initial particles.
        progress: a ``tqdm`` bar per run.
        sigma_alt: when given, score every run's final particles against an independent target sample
            (``n_test`` points, seed ``s + SCORE_SEED_OFFSET``) with :func:`mmdflow.metrics.heldout_scores`
            (energy distance and :math:`\mathrm{MMD}^2` at bandwidth ``sigma_alt``).

    Returns:
        ``{label: SeedRuns}`` in the order of ``runs``.

    Raises:
        TypeError: an entry of ``runs`` is not a :class:`~mmdflow.wfr.WFRConfig` (e.g. a ``(method, config)`` pair),
            ``kernel`` is not radial or ``target`` not callable.
        ValueError: ``runs`` is empty, a config names no method, ``seeds`` is empty or a size is not positive.
    """
    runs = _check_runs(runs)
    if not isinstance(kernel, RadialKernel):
        raise TypeError(f"kernel must be a RadialKernel (e.g. mmdflow.kernels.Gaussian), got {type(kernel).__name__}")
    if not callable(target):
        raise TypeError(f"run_seeds needs a callable target sample_target(n, generator), got {type(target).__name__}")
    if len(seeds) == 0:
        raise ValueError("seeds must not be empty")
    seeds = [check_int(s, "seed") for s in seeds]
    check_int(n_particles, "n_particles", 1)
    check_int(n_test, "n_test", 1)
    if sigma_alt is not None:
        sigma_alt = check_positive(sigma_alt, "sigma_alt")
    losses: dict[str, list[torch.Tensor]] = {label: [] for label in runs}
    walls: dict[str, list[float]] = {label: [] for label in runs}
    firsts: dict[str, Trajectory] = {}
    held_out = None
    steps: dict[str, torch.Tensor] = {}
    stats: dict[str, list[torch.Tensor]] = {label: [] for label in runs}
    scores: dict[str, list[tuple[float, float]]] = {label: [] for label in runs}
    for s in seeds:
        x0 = initial_particles(n_particles, torch.Generator().manual_seed(s), center=center, scale=scale,
                               dtype=dtype, device=device)
        yt = target(n_test, torch.Generator().manual_seed(s + TEST_SEED_OFFSET)).to(x0)
        ys = None if sigma_alt is None else target(n_test, torch.Generator().manual_seed(s + SCORE_SEED_OFFSET))
        held_out = yt if held_out is None else held_out
        energy = DiscrepancyEnergy(kernel, yt)
        for label, cfg in runs.items():
            record = [weight_statistics(torch.full((n_particles,), 1.0 / n_particles, dtype=torch.float64))]

            def callback(step, t, state, cfg=cfg, record=record):
                if step % cfg.loss_every == 0 or step == cfg.n_steps:
                    record.append(weight_statistics(state.w))

            tr = wfr_flow(energy, x0, cfg, sampler=target,
                          generator=torch.Generator().manual_seed(s + RUN_SEED_OFFSET), progress=progress,
                          callback=callback)
            losses[label].append(tr.info["loss"])
            walls[label].append(tr.wall_time)
            steps[label] = tr.info["loss_steps"]
            stats[label].append(torch.tensor(record, dtype=torch.float64))
            if ys is not None:
                final = tr.positions[-1], tr.weights[-1]
                sc = heldout_scores(final[0], ys.to(final[0]), final[1], sigma=sigma_alt)
                scores[label].append((sc.energy_distance, sc.mmd2))
            firsts.setdefault(label, by_iteration(tr))
    out = {}
    for label in runs:
        st = torch.stack(stats[label])                       # [S, L, 2]
        sc = torch.tensor(scores[label], dtype=torch.float64) if sigma_alt is not None else None
        out[label] = SeedRuns(steps=steps[label], loss=torch.stack(losses[label]),
                              wall=torch.tensor(walls[label], dtype=torch.float64), first=firsts[label],
                              ess=st[..., 0], zero_fraction=st[..., 1],
                              energy_distance=None if sc is None else sc[:, 0],
                              mmd2_alt=None if sc is None else sc[:, 1],
                              sigma_alt=None if sigma_alt is None else float(sigma_alt), held_out=held_out)
    return out
