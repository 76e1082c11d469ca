"""Generic plots: the book's style and figure sizes, point clouds, the snapshot grid and its support overlay, curves
against time.

Figures are made for the book's text column: at most :data:`COLUMN_WIDTH` inches wide at 96 dpi (688 px, the
column at a 1300 px window), so that they are shown at their natural size and no font is below 8 pt.
"""

from __future__ import annotations

import math

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["COLUMN_WIDTH", "use_style", "panels", "legend_outside", "plot_ecdf", "plot_particles", "snapshot_grid",
           "support_circle", "plot_curves"]

#: Width in inches of the book's text column at ``figure.dpi = 96`` (688 px). Wider figures are shrunk on the page.
COLUMN_WIDTH = 7.0
#: The smallest font size (pt) of the book's figures, at their natural size.
MIN_FONT = 8.5


def use_style() -> None:
    """A compact, readable matplotlib style for the book's figures: 96 dpi, fonts from 8.5 pt up.

    Line styles are set by the plotting helpers themselves (a global line-style cycle would also restyle
    drawings that are rendered into data, such as :func:`mmdflow.data.house_image`).
    """
    plt.rcParams.update({
        "figure.figsize": (6.4, 4.0), "figure.dpi": 96, "savefig.dpi": 96, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
        "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "figure.titlesize": 11,
        "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9, "legend.title_fontsize": 9,
    })


def panels(nrows: int = 1, ncols: int = 1, *, height: float = 3.2, width: float = COLUMN_WIDTH, mosaic=None,
           **kwargs):
    """A figure as wide as the text column with ``nrows x ncols`` Axes (or a ``mosaic`` layout, see
    :meth:`matplotlib.figure.Figure.subplot_mosaic`), constrained layout. Returns ``(fig, axes)``."""
    fig = plt.figure(figsize=(min(width, COLUMN_WIDTH), height), layout="constrained")
    if mosaic is not None:
        return fig, fig.subplot_mosaic(mosaic, **kwargs)
    axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


def legend_outside(ax, where: str = "right", **kwargs):
    """The legend of ``ax`` next to the data instead of on it: ``"right"`` of the Axes or ``"below"`` them."""
    if where == "right":
        return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)
    if where == "below":
        kwargs.setdefault("ncols", 2)
        return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), borderaxespad=0.0, **kwargs)
    raise ValueError(f"where must be 'right' or 'below', got {where!r}")


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def plot_ecdf(values, ax=None, **kwargs):
    """The empirical CDF of ``values`` (any shape, flattened) as a step curve; ``kwargs`` go to ``ax.step``."""
    ax = ax or plt.figure().gca()
    v = np.sort(_np(values).ravel())
    ax.step(np.concatenate([[v[0]], v]), np.arange(len(v) + 1) / len(v), where="post", **kwargs)
    return ax


def plot_particles(x, ax=None, *, w=None, s: float = 2.0, color="C0", title: str | None = None,
                   equal: bool = True, lim: float | None = None, **kwargs):
    """Scatter plot of 2D particles ``[N, 2]`` (weights, if given, set the marker area and opacity).

    Particles of zero weight are drawn hollow.
    """
    ax = ax or plt.figure().gca()
    x = _np(x)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"plot_particles needs points of shape (N, >=2), got {x.shape}")
    if w is None:
        ax.scatter(x[:, 0], x[:, 1], s=s, color=color, linewidths=0, **kwargs)
    else:
        w = _np(w)
        rel = w / max(w.max(), 1e-300)
        alive = w > 0
        ax.scatter(x[alive, 0], x[alive, 1], s=s * (0.3 + 3 * rel[alive]), c=rel[alive], cmap="viridis",
                   vmin=0, vmax=1, linewidths=0, **kwargs)
        ax.scatter(x[~alive, 0], x[~alive, 1], s=s * 2, facecolors="none", edgecolors="0.5", linewidths=0.5)
    if equal:
        ax.set_aspect("equal")
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return ax


def support_circle(r: float, *, jko_tau: float | None = None, color: str = "C3"):
    r"""An overlay ``overlay(ax, t)`` for :func:`snapshot_grid`: the support circle of :math:`\gamma(t)` in d = 2.

    Radius :math:`R(t) = ((2-r)t)^{1/(2-r)}R_*` (:func:`mmdflow.analytic.support_radius`), dashed; with
    ``jko_tau`` also the support of the JKO iterate, radius :math:`c_nR_*` with :math:`n = t/\tau`, dotted.
    """
    from .. import analytic

    phi = np.linspace(0, 2 * np.pi, 200)

    def overlay(ax, t):
        if t <= 0:
            return
        rad = float(analytic.support_radius(float(t), 2, r))
        ax.plot(rad * np.cos(phi), rad * np.sin(phi), color=color, lw=0.9, ls="--")
        if jko_tau is not None:
            rad = float(analytic.jko_scale(round(t / jko_tau), jko_tau, r)) * analytic.prox_radius(2, r)
            ax.plot(rad * np.cos(phi), rad * np.sin(phi), color="0.3", lw=0.9, ls=":")

    return overlay


def _limits(trajs, times, target, lim):
    if lim is None:
        pts = [_np(tr.positions[tr.index_of(t, tol=math.inf)])[:, :2] for tr in trajs.values() for t in times]
        if target is not None:
            pts.append(_np(target)[:, :2])
        allpts = np.concatenate(pts)
        lo, hi = np.quantile(allpts, 0.002, axis=0), np.quantile(allpts, 0.998, axis=0)
        pad = 0.05 * max(float((hi - lo).max()), 1e-12)
        return lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad
    if np.isscalar(lim):
        return -lim, lim, -lim, lim
    return tuple(lim)


def snapshot_grid(trajs, times: Sequence[float], *, target=None, lim=None, s: float = 1.0, panel: float = 1.9,
                  overlay=None, suptitle: str | None = None, axes=None, time_label: str = "$t = {:.4g}$"):
    """Rows = schemes, columns = times: the 2D particles of each trajectory at the snapshot nearest each time.

    The one snapshot grid of the book. Weighted trajectories (``Trajectory.weights``, not all equal) draw marker
    area and colour by weight relative to the largest (zero weights hollow, see :func:`plot_particles`), with a
    colour bar.

    Args:
        trajs: a :class:`mmdflow.trajectory.Trajectory` or ``{name: Trajectory}`` (one row each).
        times: the times of the columns.
        target: optional ``[M, 2]`` target points drawn faintly behind the particles.
        lim: ``(xmin, xmax, ymin, ymax)``, a half-width, or ``None`` (from the shown points' 0.2-99.8% range).
        s: marker size.
        panel: panel size in inches.
        overlay: optional ``overlay(ax, t)`` drawn on every panel (e.g. :func:`support_circle`).
        axes: an existing ``[rows, len(times)]`` array of Axes (default: a new figure).
        time_label: format of the panel titles, given the snapshot's time (e.g. ``"iteration {:.0f}"``).

    Returns:
        the figure.
    """
    if not isinstance(trajs, dict):
        trajs = {"": trajs}
    names = list(trajs)
    panel = min(panel, (COLUMN_WIDTH - 0.5) / len(times))      # the whole grid fits the text column
    if axes is None:
        fig, axes = plt.subplots(len(names), len(times), figsize=(panel * len(times), panel * len(names) + 0.4),
                                 squeeze=False, sharex=True, sharey=True)
    else:
        axes = np.asarray(axes).reshape(len(names), len(times))
        fig = axes[0, 0].figure
    x0, x1, y0, y1 = _limits(trajs, times, target, lim)
    tg = None if target is None else _np(target)
    weighted = False
    for row, name in enumerate(names):
        tr = trajs[name]
        for col, t in enumerate(times):
            ax = axes[row, col]
            i = tr.index_of(t, tol=math.inf)
            if tg is not None:
                ax.scatter(tg[:, 0], tg[:, 1], s=max(s, 1.5), color="0.62", linewidths=0, rasterized=True)
            w = None if tr.weights is None else tr.weights[i]
            if w is not None and bool((w == w[0]).all()):
                w = None                                         # uniform weights: plain markers
            weighted = weighted or w is not None
            plot_particles(tr.positions[i], ax, w=w, s=s, color=f"C{row}", rasterized=True)
            if overlay is not None:
                overlay(ax, float(tr.times[i]))
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
            ax.set_title(time_label.format(float(tr.times[i])), fontsize=9)
            ax.tick_params(labelsize=MIN_FONT)
            ax.set_xlabel("$x_1$" if row == len(names) - 1 else "", fontsize=9)
            ax.set_ylabel((f"{name}\n" if name else "") + "$x_2$" if col == 0 else "", fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    if weighted:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap="viridis"), ax=axes.ravel().tolist(), shrink=0.6,
                     label="weight / largest weight\n(hollow: zero)")
    return fig


def plot_curves(curves: dict, ax=None, *, xlabel: str = "$t$", ylabel: str = "", logy: bool = False,
                logx: bool = False, title: str | None = None, bands: dict | None = None):
    """Several curves ``{label: (x, y)}`` on one Axes (one colour and line style each), optional
    ``bands = {label: (x, lo, hi)}``."""
    ax = ax or plt.figure().gca()
    styles = ["-", "--", "-.", ":"]
    for i, (name, (xs, ys)) in enumerate(curves.items()):
        ax.plot(_np(xs), _np(ys), label=name, color=f"C{i}", ls=styles[i % 4], lw=1.6)
        if bands and name in bands:
            bx, lo, hi = bands[name]
            ax.fill_between(_np(bx), _np(lo), _np(hi), color=f"C{i}", alpha=0.2, linewidth=0)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend()
    return ax
