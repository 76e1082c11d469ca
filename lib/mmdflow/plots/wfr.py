"""Plots for the kernelised Wasserstein-Fisher-Rao chapter: loss bands over seeds, weighted particle panels.

The multi-seed helpers take the results of :func:`mmdflow.experiments.run_seeds`: a mapping
``{label: SeedRuns}`` (:class:`mmdflow.experiments.SeedRuns`). The summary statistics live with the runs
(:mod:`mmdflow.experiments.seeds`, :mod:`mmdflow.experiments.ift`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogLocator
import torch

from ..experiments.ift import size_summary
from ..experiments.seeds import SeedRuns, check_seed_runs, compare_final, final_scores
from .common import COLUMN_WIDTH, legend_outside
from .tables import Table, mean_std

__all__ = ["plot_loss_bands", "plot_loss_comparison", "comparison_table",
           "plot_weight_degeneracy", "scores_table", "plot_final_vs_size", "size_table", "plot_decay", "decay_table"]


_STYLES = ["-", "--", "-.", ":"]
_MARKERS = ["o", "s", "^", "v", "D", "P", "X"]


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def plot_loss_bands(results: Mapping[str, SeedRuns], ax=None, *, title: str | None = None,
                    ylabel: str = r"$\mathrm{MMD}^2$ (held-out)", xlabel: str = "iteration", legend: str | None = "right"):
    """Mean held-out loss against iterations, log scale, with a band of one standard deviation over seeds.

    Args:
        results: ``{label: SeedRuns}`` from :func:`mmdflow.experiments.run_seeds` (``loss`` ``[S, L]``,
            ``steps`` ``[L]``).
        ax: an Axes (a new figure when ``None``).

    The band is ``mean +- std`` over the seeds; its lower edge is clipped at the smallest loss over the
    seeds so that it stays positive on the log scale. One colour and line style per scheme; ``legend``:
    ``"right"`` of the data, ``"inside"`` or ``None``.
    """
    ax = ax or plt.figure(figsize=(COLUMN_WIDTH, 3.4), layout="constrained").gca()
    for i, (label, r) in enumerate(check_seed_runs(results).items()):
        loss = _np(r.loss)
        steps = _np(r.steps)
        mean, std = loss.mean(0), loss.std(0)
        lo = np.maximum(mean - std, loss.min(0))
        n_seeds = loss.shape[0]
        ax.plot(steps, mean, color=f"C{i}", ls=_STYLES[i % 4], lw=1.6,
                label=f"{label} ({n_seeds} seed{'s' if n_seeds > 1 else ''})")
        ax.fill_between(steps, lo, mean + std, color=f"C{i}", alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend == "right":
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    elif legend == "inside":
        ax.legend()
    return ax


def plot_loss_comparison(results_by_target: Mapping[str, Mapping[str, SeedRuns]], *, suffix: str = ""):
    """One :func:`plot_loss_bands` panel per target side by side, one shared legend below. Returns the figure."""
    fig, axes = plt.subplots(1, len(results_by_target), figsize=(COLUMN_WIDTH, 3.8), layout="constrained",
                             squeeze=False, sharey=True)
    for ax, (name, res) in zip(axes[0], results_by_target.items()):
        plot_loss_bands(res, ax, title=f"{name} target{suffix}", legend=None)
        ax.label_outer()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return fig


def comparison_table(results_by_target: Mapping[str, Mapping[str, SeedRuns]], method: str, baseline: str) -> Table:
    """Per target, :func:`mmdflow.experiments.seeds.compare_final`: the ratio of the final held-out losses
    ``method / baseline`` per seed (smallest and largest), whether ``method`` is lower on every seed, and the share of
    zero-weight particles of ``method`` at the end of its first seed."""
    rows = []
    for target, res in results_by_target.items():
        c = compare_final(res, method, baseline)
        rows.append([target, f"{c.ratio_min:.3f} to {c.ratio_max:.3f}", "yes" if c.below_every_seed else "no",
                     "n/a" if c.zero_fraction is None else f"{c.zero_fraction:.0%}"])
    return Table(["target", f"final loss, {method} / {baseline}, per seed", "lower on every seed",
                  "zero-weight particles (first seed)"], rows, align=["l", "r", "c", "r"])


def plot_weight_degeneracy(results: Mapping[str, SeedRuns], *, title: str | None = None, n_particles: int | None = None):
    r"""Two panels against iterations: the effective sample size :math:`1/\sum_i w_i^2` (log scale) and the share of
    zero-weight particles, mean over the seeds with the range of the seeds as a band, for every scheme of
    ``results`` (``{label: SeedRuns}`` with ``ess`` and ``zero_fraction``). Returns the figure."""
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.3), layout="constrained")
    for i, (label, r) in enumerate(check_seed_runs(results).items()):
        if r.ess is None:
            raise ValueError(f"results[{label!r}] has no weight statistics (ess)")
        steps = _np(r.steps)
        for ax, vals in zip(axes, (_np(r.ess), 100 * _np(r.zero_fraction))):
            ax.plot(steps, vals.mean(0), color=f"C{i}", ls=_STYLES[i % 4], lw=1.5, label=label)
            ax.fill_between(steps, vals.min(0), vals.max(0), color=f"C{i}", alpha=0.2, linewidth=0)
    axes[0].set_yscale("log")
    axes[0].yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes[0].yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].yaxis.set_minor_formatter(plt.NullFormatter())
    axes[0].set(xlabel="iteration", ylabel=r"effective sample size $1/\sum_i w_i^2$")
    if n_particles:
        axes[0].axhline(n_particles, color="0.5", lw=0.8, ls=":")
    axes[1].set(xlabel="iteration", ylabel="zero-weight particles (%)", ylim=(-2, 102))
    if title:
        fig.suptitle(title)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return fig


def scores_table(results_by_target: Mapping[str, Mapping[str, SeedRuns]], *, caption: str | None = None) -> Table:
    r"""Final scores per target and scheme (:func:`mmdflow.experiments.seeds.final_scores`), mean ± std over the
    seeds: held-out :math:`\mathrm{MMD}^2` of the training kernel, energy distance and :math:`\mathrm{MMD}^2` at the
    second bandwidth (against an independent sample), effective sample size and zero-weight share; the rank of each
    scheme by the training metric and by the energy distance (1 = best)."""
    def ms(m):
        return "n/a" if m is None else mean_std(m.mean, m.std)

    rows = [[sc.target, sc.label, ms(sc.loss), ms(sc.energy_distance), ms(sc.mmd2_alt),
             "n/a" if sc.ess is None else f"{sc.ess:.0f}",
             "n/a" if sc.zero_fraction is None else f"{100 * sc.zero_fraction:.0f}%",
             f"{sc.rank} / {'n/a' if sc.rank_energy is None else sc.rank_energy}"]
            for sc in final_scores(results_by_target)]
    sig = next((r.sigma_alt for res in results_by_target.values() for r in res.values() if r.sigma_alt), None)
    alt = r"$\mathrm{MMD}^2$, $\sigma' = " + (f"{sig:g}$" if sig else "?$")
    return Table(["target", "scheme", r"$\mathrm{MMD}^2$ (training kernel)", "energy distance", alt, "ESS",
                  "zero weight", "rank: training / energy"], rows, align=["l", "l", "r", "r", "r", "r", "r", "c"],
                 caption=caption)


def plot_final_vs_size(finals: Mapping[str, Mapping[int, Sequence[float]]], ax=None, *, title: str | None = None):
    r"""Final held-out :math:`\mathrm{MMD}^2` against the number of particles ``N`` (log-log), per scheme: the mean
    over the seeds (marker and line) and the range of the seeds (error bar). ``finals``: ``{label: {N: [per seed]}}``
    (:func:`mmdflow.experiments.ift.finals_by_size`)."""
    ax = ax or plt.figure(figsize=(COLUMN_WIDTH, 3.6), layout="constrained").gca()
    for i, (label, by_n) in enumerate(finals.items()):
        ns = np.array(sorted(by_n), dtype=float)
        vals = [np.asarray(by_n[int(n)], dtype=float) for n in ns]
        mean = np.array([v.mean() for v in vals])
        lo = mean - np.array([v.min() for v in vals])
        hi = np.array([v.max() for v in vals]) - mean
        jitter = 1.0 + 0.025 * (i - (len(finals) - 1) / 2)            # spread overlapping error bars
        ax.errorbar(ns * jitter, mean, yerr=[lo, hi], color=f"C{i}", ls=_STYLES[i % 4], marker=_MARKERS[i % 7],
                    ms=5, lw=1.3, capsize=2, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = sorted({n for by_n in finals.values() for n in by_n})
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set(xlabel="particles $N$", ylabel=r"final $\mathrm{MMD}^2$ (held-out)")
    if title:
        ax.set_title(title)
    legend_outside(ax)
    return ax


def size_table(finals: Mapping[str, Mapping[int, Sequence[float]]], baseline: str) -> Table:
    """Per scheme and ``N`` (:func:`mmdflow.experiments.ift.size_summary`): the final loss, mean ± std over the seeds
    (number of seeds), and its ratio to ``baseline``'s mean at the same ``N``."""
    summary = size_summary(finals, baseline)
    sizes = sorted({n for by_n in summary.values() for n in by_n})
    rows = [[label] + ["" if n not in by_n else
                       f"{mean_std(by_n[n].mean, by_n[n].std)} ({by_n[n].n_seeds}), ×{by_n[n].ratio:.2f}"
                       for n in sizes] for label, by_n in summary.items()]
    return Table(["scheme"] + [f"N = {n}" for n in sizes], rows, align=["l"] + ["r"] * len(sizes),
                 note=f"mean ± std (seeds), ×: ratio to the mean of {baseline}")


def plot_decay(runs, *, title: str | None = None):
    r"""The decay claim: :math:`\mathrm{MMD}^2(\mu_t, \nu)` of :func:`mmdflow.experiments.ift.decay_study` runs
    (log scale) against :math:`t`, each with its bound :math:`(1+\beta h)^{-2t/h}\mathrm{MMD}^2(\mu_0, \nu)` (thin
    dotted, same colour; the implicit-Euler counterpart of :math:`e^{-2\beta t}`, black dashed for the largest
    :math:`\beta` on the left). Left: transport off (:math:`\tau = 0`); right: with transport. Returns the figure."""
    fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.6), layout="constrained", sharey=True)
    groups = [[r for r in runs if r.tau == 0], [r for r in runs if r.tau > 0]]
    for ax, group, name in zip(axes, groups, (r"transport off ($\tau = 0$)", r"with transport ($\tau > 0$)")):
        for i, r in enumerate(group):
            t, m2 = _np(r.t), np.maximum(_np(r.mmd2), 1e-30)
            lab = ("exact step" if r.weight_step == "prox" else "one PGD step") + rf", $\beta$ = {r.beta:g}"
            if r.tau > 0:
                lab += rf", $\tau$ = {r.tau:g}"
            ax.plot(t, m2, color=f"C{i}", ls=_STYLES[i % 4], marker=_MARKERS[i % 7], ms=3, markevery=5, lw=1.4,
                    label=lab)
            ax.plot(t, m2[0] * (1 + r.beta * r.h) ** (-2 * t / r.h), color=f"C{i}", ls=":", lw=1.0)
        if group and group[0].tau == 0:
            r = max(group, key=lambda r: r.beta)
            t = _np(r.t)
            ax.plot(t, _np(r.mmd2)[0] * np.exp(-2 * r.beta * t), "k--", lw=0.9,
                    label=rf"$e^{{-2\beta t}}\mathrm{{MMD}}_0^2$, $\beta$ = {r.beta:g}")
        ax.set_yscale("log")
        ax.set_ylim(1e-12, None)
        ax.set(xlabel=r"time $t = \ell h$", title=name)
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)   # below the data
    axes[0].set_ylabel(r"$\mathrm{MMD}^2(\mu_t, \nu)$")
    if title:
        fig.suptitle(title)
    return fig


def decay_table(runs) -> Table:
    r"""Per decay run: the weight step, :math:`\beta`, :math:`\tau`, the fitted rate :math:`\hat\beta` of
    :math:`\mathrm{MMD}`, the implicit-Euler rate :math:`\log(1+\beta h)/h`, the largest excess of
    :math:`\mathrm{MMD}^2` over the discrete bound (against the float rounding bound of the statistic) and whether
    the discrete and the continuous bounds held at every step up to that rounding."""
    rows = [["exact" if r.weight_step == "prox" else "PGD", f"{r.beta:g}", f"{r.tau:g}",
             f"{r.rate:.3f}", f"{np.log1p(r.beta * r.h) / r.h:.3f}" if r.weight_step == "prox" else "n/a",
             "none" if r.excess <= 0 else f"{r.excess:.0e}", "yes" if r.holds else "no",
             "yes" if r.holds_continuous else "no"] for r in runs]
    rnd = max(r.roundoff for r in runs) if runs else 0.0
    return Table(["step", r"$\beta$", r"$\tau$", r"fitted $\hat\beta$", r"$\log(1+\beta h)/h$",
                  "excess", "discrete bound", r"$e^{-\beta t}$ bound"],
                 rows, align=["l", "r", "r", "r", "r", "r", "c", "c"],
                 note=f"Step: the exact proximal weight step or one projected-gradient (PGD) step. Bounds: whether "
                      f"they hold at every step. "
                      f"Excess: the largest $\\mathrm{{MMD}}^2_\\ell - (1+\\beta h)^{{-2\\ell}}\\mathrm{{MMD}}_0^2$ over "
                      f"the steps; an excess below the float64 rounding bound of the statistic, {rnd:.0e}, is "
                      f"round-off and counts as holding.")