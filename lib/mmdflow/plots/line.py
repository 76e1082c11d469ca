"""Figures of the chapter on flows on the line: exact quantile flows, error curves, grid densities.

Every function takes arrays or result objects (:class:`mmdflow.experiments.line.ErrorRow`,
:class:`~mmdflow.experiments.line.KLRun`) and returns the figure or Axes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .common import COLUMN_WIDTH, legend_outside

__all__ = ["plot_quantile_flows", "plot_error_lines", "plot_grid_densities", "plot_kl_curves", "plot_sigma_study"]

_STYLES = ["-", "--", "-.", ":"]
_MARKERS = ["o", "s", "^", "D", "v", "P"]


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def plot_quantile_flows(flows: dict, levels, times, *, ncols: int = 3):
    """One panel per target: the exact CDF :math:`s \\mapsto Q(t,s)` drawn as ``(Q, s)`` at each of ``times``.

    Args:
        flows: ``{title: [len(times), n] quantiles}``; levels: ``[n]``; times: the times.
    """
    n = len(flows)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(COLUMN_WIDTH, 2.2 * nrows + 0.4), layout="constrained",
                             squeeze=False)
    cmap = plt.get_cmap("viridis")
    s = _np(levels)
    for ax, (title, q) in zip(axes.ravel(), flows.items()):
        q = _np(q)
        for k, t in enumerate(times):
            ax.plot(q[k], s, color=cmap(k / max(len(times) - 1, 1)), ls=_STYLES[k % 4], lw=1.4, label=f"t = {t:g}")
        ax.set_title(title)
        ax.set_xlabel("x")
        ax.set_ylabel("$F_{\\mu_t}(x)$")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    (axes.ravel()[n] if n < axes.size else axes.ravel()[-1]).legend(handles, labels, loc="center")
    return fig


def plot_error_lines(series: dict, ax=None, *, xlabel: str, ylabel: str, title: str | None = None,
                     slopes: dict | None = None, legend: str = "below"):
    """Log-log error curves ``{label: (x, err)}`` with markers, and optional reference slopes
    ``{order: (x0, y0)}`` drawn dotted through ``(x0, y0 / 2)`` (below the data, so that both stay visible)."""
    from matplotlib.ticker import NullFormatter

    ax = ax or plt.figure(figsize=(COLUMN_WIDTH * 0.6, 3.0)).gca()
    for i, (label, (xs, ys)) in enumerate(series.items()):
        ax.loglog(_np(xs), _np(ys), marker=_MARKERS[i % len(_MARKERS)], ls=_STYLES[i % 4], color=f"C{i}",
                  label=label, lw=1.4)
    for order, (x0, y0) in (slopes or {}).items():
        xs = np.array(sorted({float(v) for _, (xx, _) in series.items() for v in _np(xx)}))
        ax.loglog(xs, 0.5 * y0 * (xs / x0) ** order, color="0.4", ls=":", lw=1.2, label=f"slope {order:g}")
    # minor tick labels crowd a log axis spanning a decade or more; below a decade they are the only labels
    for axis, k in ((ax.xaxis, 0), (ax.yaxis, 1)):
        vals = [float(v) for pair in series.values() for v in _np(pair[k]) if float(v) > 0]
        if vals and max(vals) / min(vals) >= 10:
            axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    legend_outside(ax, legend)
    return ax


def plot_grid_densities(x, curves: dict, ax=None, *, title: str | None = None, target=None):
    """Densities on a grid ``{label: [n]}`` (one line style each), the target filled in grey."""
    ax = ax or plt.figure(figsize=(COLUMN_WIDTH, 3.0)).gca()
    xx = _np(x)
    if target is not None:
        ax.fill_between(xx, _np(target), color="0.85", label="target $\\nu$")
    for i, (label, dens) in enumerate(curves.items()):
        ax.plot(xx, _np(dens), color=f"C{i}", ls=_STYLES[i % 4], lw=1.4, label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    legend_outside(ax)
    return ax


def plot_kl_curves(grid_curves: dict, runs, ax=None, *, title: str | None = None):
    r""":math:`\mathrm{KL}(\nu|\mu_t)` against time: grid flows ``{label: (t, kl)}`` as lines, particle runs
    (:class:`~mmdflow.experiments.line.KLRun`) as markers."""
    ax = ax or plt.figure(figsize=(COLUMN_WIDTH, 3.2)).gca()
    for i, (label, (t, kl)) in enumerate(grid_curves.items()):
        ax.semilogy(_np(t), _np(kl), color=f"C{i}", ls=_STYLES[i % 4], lw=1.6, label=label)
    for j, run in enumerate(runs):
        ax.semilogy(run.times, run.kl, color=f"C{len(grid_curves) + j}", marker=_MARKERS[j % len(_MARKERS)],
                    ls="none", ms=4, label=f"{run.method}, $\\sigma$ = {run.sigma:g} (particles)")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\mathrm{KL}(\nu|\mu_t)$")
    if title:
        ax.set_title(title)
    legend_outside(ax)
    return ax


def plot_sigma_study(study: dict, ax=None, *, title: str | None = None):
    r"""Grid study :func:`mmdflow.experiments.line.sigma_study`: :math:`W_2` of each kernel flow to its
    :math:`\sigma\to0` limit (solid) and to the inclusive-KL flow (dashed), against :math:`\sigma`."""
    ax = ax or plt.figure(figsize=(COLUMN_WIDTH * 0.7, 3.0)).gca()
    for i, (method, rows) in enumerate(study.items()):
        sig = sorted(rows)
        ax.loglog(sig, [rows[s][0] for s in sig], color=f"C{i}", marker=_MARKERS[i], ls="-",
                  label=f"{method}: to its $\\sigma\\to0$ limit")
        ax.loglog(sig, [rows[s][1] for s in sig], color=f"C{i}", marker=_MARKERS[i], ls="--", mfc="none",
                  label=f"{method}: to the KL flow")
    ax.set_xlabel(r"bandwidth $\sigma$")
    ax.set_ylabel(r"$W_2$ at the end time")
    if title:
        ax.set_title(title)
    legend_outside(ax)
    return ax
