"""Plots of chapter 7 (fast kernel summation): error against P, time against N, MMD against wall time."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .common import legend_outside

__all__ = ["plot_error_vs_directions", "plot_time_vs_size", "plot_merit", "backend_colour", "BACKEND_COLOURS"]


def _ax(ax):
    return ax if ax is not None else plt.figure().gca()


#: one colour per backend (and per direction rule of the sliced backend), the same in every panel and figure.
BACKEND_COLOURS = {"dense": "C0", "blocked": "C1", "keops": "C5", "equispaced": "C2", "iid": "C3",
                   "orthogonal": "C4"}


def backend_colour(label: str) -> str:
    """The colour of a curve label: its direction rule for sliced labels (``"sliced iid P=1000"`` -> iid), else its
    backend (``"blocked (exact)"`` -> blocked); grey for an unknown label."""
    words = label.replace("(", " ").split()
    for w in (words[1:2] if words and words[0] == "sliced" else []) + words:
        if w in BACKEND_COLOURS:
            return BACKEND_COLOURS[w]
    return "0.4"


def plot_error_vs_directions(errors: Mapping[str, tuple[Sequence[float], Sequence[float]]], ax=None, *,
                             title: str = "", reference: bool = True):
    """Log-log relative gradient error against the number of directions ``P``.

    Args:
        errors: label -> (list of P, list of errors).
        reference: draw a dotted ``P^(-1/2)`` line through the first point of the first curve.
    """
    ax = _ax(ax)
    styles = ["-", "--", "-."]
    for i, (label, (ps, errs)) in enumerate(errors.items()):
        ax.loglog(ps, errs, marker="osD"[i % 3], ls=styles[i % 3], color=backend_colour(label), label=label)
    if reference and errors:
        ps, errs = next(iter(errors.values()))
        ps = np.asarray(ps, dtype=float)
        ax.loglog(ps, errs[0] * np.sqrt(ps[0] / ps), "k:", label=r"$\propto P^{-1/2}$")
    ax.set(xlabel="number of directions $P$", ylabel="relative gradient error", title=title)
    legend_outside(ax, "below")
    return ax


def plot_time_vs_size(times: Mapping[str, tuple[Sequence[float], Sequence[float]]], ax=None, *,
                      title: str = "", slopes: Sequence[int] = (1, 2)):
    """Log-log (median) wall time of one value-and-gradient evaluation against ``N`` (= ``M``), one curve per backend.

    ``slopes``: dotted reference lines ``N^k`` through the first point of the slowest curve.
    Backends without any measured size (e.g. ``dense`` beyond its memory cap) are left out.
    """
    ax = _ax(ax)
    times = {label: (ns, ts) for label, (ns, ts) in times.items() if len(ns) > 0}
    styles = ["-", "--", "-.", (0, (5, 1, 1, 1))]
    for i, (label, (ns, ts)) in enumerate(times.items()):
        ax.loglog(ns, ts, marker="osD^"[i % 4], ls=styles[i % 4], color=backend_colour(label), label=label)
    if slopes and times:
        n_all = np.array(sorted({n for ns, _ in times.values() for n in ns}), dtype=float)
        n0, t0 = max(((ns[0], ts[0]) for ns, ts in times.values()), key=lambda p: p[1])
        for k in slopes:
            ax.loglog(n_all, t0 * (n_all / n0) ** k, ":", color="grey", lw=1)
            ax.annotate(f"$N^{k}$", (n_all[-1], t0 * (n_all[-1] / n0) ** k), color="grey", fontsize=9)
    ax.set(xlabel="$N = M$ (points)", ylabel="median seconds per evaluation", title=title)
    legend_outside(ax, "below")
    return ax


def plot_merit(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], ax=None, *, title: str = "",
               ylabel: str = r"exact MMD$^2$ to the target"):
    """Exact MMD^2 of a particle flow against the wall time spent in its steps (log y), one curve per backend."""
    ax = ax if ax is not None else plt.figure(figsize=(7.0, 3.6), layout="constrained").gca()
    styles = ["-", "--", "-.", ":"]
    for i, (label, (wall, vals)) in enumerate(curves.items()):
        ax.semilogy(wall, vals, marker="osD^"[i % 4], ls=styles[i % 4], ms=4, color=backend_colour(label),
                    label=label)
    ax.set(xlabel="wall time of the flow steps (s)", ylabel=ylabel, title=title)
    legend_outside(ax, "right")
    return ax
