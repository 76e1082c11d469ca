"""Plots for the kernelised Wasserstein-Fisher-Rao chapter: loss bands over seeds, weighted particle panels.

The multi-seed helpers take the results of :func:`mmdflow.experiments.run_seeds`: a mapping
``{label: SeedRuns}`` (:class:`mmdflow.experiments.SeedRuns`).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..experiments.seeds import SeedRuns
from .common import COLUMN_WIDTH, plot_particles
from .tables import Table, mean_std

__all__ = ["FinalLoss", "plot_loss_bands", "plot_loss_comparison", "plot_weighted_snapshots", "summarise_final",
           "final_loss_table", "comparison_table"]


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _check_results(results) -> Mapping[str, SeedRuns]:
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a mapping label -> SeedRuns (mmdflow.experiments.run_seeds), "
                        f"got {type(results).__name__}")
    for label, r in results.items():
        if not isinstance(r, SeedRuns):
            raise TypeError(f"results[{label!r}] must be a SeedRuns (mmdflow.experiments.run_seeds), "
                            f"got {type(r).__name__}")
    return results


class FinalLoss(NamedTuple):
    """Mean and standard deviation over the seeds of one scheme's final held-out loss (:func:`summarise_final`)."""

    mean: float
    std: float


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
    styles = ["-", "--", "-.", ":"]
    for i, (label, r) in enumerate(_check_results(results).items()):
        loss = _np(r.loss)
        steps = _np(r.steps)
        mean, std = loss.mean(0), loss.std(0)
        lo = np.maximum(mean - std, loss.min(0))
        n_seeds = loss.shape[0]
        ax.plot(steps, mean, color=f"C{i}", ls=styles[i % 4], lw=1.6,
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


def plot_weighted_snapshots(trajectories: dict, times: Sequence[float], *, target=None, axes=None, s: float = 6.0,
                            xlim=None, ylim=None, max_points: int | None = None, generator=None):
    """A grid of panels: one row per scheme, one column per iteration, particles coloured by weight.

    Particle colour and size encode the weight relative to the largest one (colour bar on the right); particles of
    zero weight are drawn hollow (:func:`mmdflow.plots.common.plot_particles`); uniform weights are drawn red. ``target`` samples ``[M, 2]`` are drawn in
    light grey underneath; ``max_points`` shows a random subset of the particles (``generator`` picks it).

    Args:
        trajectories: ``{label: Trajectory}`` (weights may be ``None`` = uniform).
        times: iterations to show (the nearest snapshot is used).

    Returns:
        the ``[rows, cols]`` array of Axes.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    rows, cols = len(trajectories), len(times)
    if axes is None:
        panel = min(2.5, (COLUMN_WIDTH - 1.4) / cols)
        _, axes = plt.subplots(rows, cols, figsize=(COLUMN_WIDTH, panel * rows + 0.5), squeeze=False, sharex=True,
                               sharey=True, layout="constrained")
    weighted = False
    for r, (label, tr) in enumerate(trajectories.items()):
        n = tr.positions.shape[1]
        idx = None
        if max_points is not None and max_points < n:
            idx = torch.randperm(n, generator=generator)[:max_points]
        for c, t in enumerate(times):
            ax = axes[r][c]
            i = int(torch.argmin((tr.times - t).abs()))
            x = tr.positions[i]
            w = None if tr.weights is None else tr.weights[i]
            if idx is not None:
                x = x[idx]
                w = None if w is None else w[idx]
            if target is not None:
                yt = _np(target)
                ax.scatter(yt[:, 0], yt[:, 1], s=2, color="0.7", linewidths=0, zorder=0)
            if w is None or bool((w == w.max()).all()):
                plot_particles(x, ax, s=s, color="C3", equal=False)
            else:
                plot_particles(x, ax, w=w, s=s, equal=False)
                weighted = True
            ax.set_title(f"iteration {int(tr.times[i])}" if r == 0 else "", fontsize=9)
            ax.set_xlabel("$x_1$" if r == rows - 1 else "")
            ax.set_ylabel(f"{label}\n$x_2$" if c == 0 else "", fontsize=9)
            ax.tick_params(labelsize=8.5)
            if xlim is not None:
                ax.set_xlim(*xlim)
            if ylim is not None:
                ax.set_ylim(*ylim)
    if weighted:
        fig = axes[0][0].figure
        fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap="viridis"), ax=np.asarray(axes).ravel().tolist(),
                     shrink=0.6, label="weight / largest weight\n(hollow: zero)")
    return axes


def summarise_final(results: Mapping[str, SeedRuns], digits: int = 2) -> dict[str, FinalLoss]:
    """``{label: FinalLoss(mean, std)}`` of the final held-out loss over the seeds (numpy ``std``, ``ddof=0``),
    rounded to ``digits`` significant digits."""
    out = {}
    for label, r in _check_results(results).items():
        final = _np(r.final)
        out[label] = FinalLoss(float(f"{final.mean():.{digits}g}"), float(f"{final.std():.{digits}g}"))
    return out


def final_loss_table(summaries: Mapping[str, Mapping[str, FinalLoss]], *, caption: str | None = None) -> Table:
    """``{target: {scheme: FinalLoss}}`` (:func:`summarise_final` per target) as a table: one row per target,
    one column per scheme (all schemes of all targets, in order of appearance), cells ``mean ± std``."""
    schemes = list(dict.fromkeys(k for summ in summaries.values() for k in summ))
    rows = [[target] + [mean_std(*summ[k]) if k in summ else "" for k in schemes] for target, summ in summaries.items()]
    return Table(["target"] + schemes, rows, align=["l"] + ["r"] * len(schemes), caption=caption)


def comparison_table(results_by_target: Mapping[str, Mapping[str, SeedRuns]], method: str, baseline: str) -> Table:
    """Per target: the ratio of the final held-out losses ``method / baseline`` per seed (smallest and largest),
    whether ``method`` is lower on every seed, and the share of zero-weight particles of ``method`` at the end of
    its first seed."""
    rows = []
    for target, res in results_by_target.items():
        a, b = _check_results(res)[method], res[baseline]
        ratio = _np(a.final) / _np(b.final)
        w = a.first.weights
        zero = "n/a" if w is None else f"{float((w[-1] == 0).double().mean()):.0%}"
        rows.append([target, f"{ratio.min():.3f} to {ratio.max():.3f}", "yes" if (ratio < 1).all() else "no", zero])
    return Table(["target", f"final loss, {method} / {baseline}, per seed", "lower on every seed",
                  "zero-weight particles (first seed)"], rows, align=["l", "r", "c", "r"])
