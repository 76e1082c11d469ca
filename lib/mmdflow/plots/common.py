"""Generic plots: point clouds, snapshot rows, curves against time."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["use_style", "plot_particles", "plot_snapshots", "plot_curves"]


def use_style() -> None:
    """A compact, readable matplotlib style for the book's figures."""
    plt.rcParams.update({
        "figure.figsize": (6.4, 4.0), "figure.dpi": 96, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
        "font.size": 10, "axes.titlesize": 11,
    })


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


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


def plot_snapshots(traj, times: Sequence[float], *, axes=None, lim: float | None = None, s: float = 2.0,
                   overlay=None, label: str | None = None):
    """One panel per requested time with the trajectory's nearest snapshot.

    Args:
        traj: a :class:`mmdflow.trajectory.Trajectory` of 2D particles.
        times: the times to show.
        axes: a sequence of Axes (one per time); a new row of panels when ``None``.
        overlay: optional callable ``overlay(ax, t)`` drawing e.g. the analytic support circle.
        label: text put in front of each panel title (e.g. the scheme's name).

    Returns:
        the array of Axes.
    """
    if axes is None:
        _, axes = plt.subplots(1, len(times), figsize=(2.4 * len(times), 2.6), squeeze=False)
        axes = axes[0]
    for ax, t in zip(axes, times):
        i = int(torch.argmin((traj.times - t).abs()))
        w = None if traj.weights is None else traj.weights[i]
        plot_particles(traj.positions[i], ax, w=w, s=s, lim=lim)
        if overlay is not None:
            overlay(ax, float(traj.times[i]))
        ax.set_title(f"{label + ': ' if label else ''}t = {float(traj.times[i]):.3g}")
        ax.set_xlabel("")
        ax.set_ylabel("")
    return axes


def plot_curves(curves: dict, ax=None, *, xlabel: str = "t", ylabel: str = "", logy: bool = False,
                logx: bool = False, title: str | None = None, bands: dict | None = None):
    """Several curves ``{label: (x, y)}`` on one Axes, optional ``bands = {label: (x, lo, hi)}``."""
    ax = ax or plt.figure().gca()
    for i, (name, (xs, ys)) in enumerate(curves.items()):
        ax.plot(_np(xs), _np(ys), label=name, color=f"C{i}")
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
