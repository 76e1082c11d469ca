"""Figures and tables of chapter 2 (flows that start at a Dirac): prox densities, radii, JKO errors, flow accuracy."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import analytic, schemes
from .common import legend_outside, plot_ecdf
from .tables import Table

__all__ = [
    "plot_prox_densities",
    "plot_radius_cdfs",
    "plot_frostman_profiles",
    "plot_support_radius",
    "plot_jko_errors",
    "plot_flow_errors",
    "plot_mean_radius",
    "prox_radius_table",
    "flow_summary_table",
]


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def plot_prox_densities(d: int, r_values: Sequence[float], ax=None, *, n: int = 801, ymax: float | None = None):
    r"""Density of :math:`\eta^*` along a line through the origin, :math:`x_1\mapsto\eta^*(x_1 e_1)`,
    for each ``r`` (ball case only). The support edge :math:`\pm R_*` is marked by a dotted line."""
    ax = ax or plt.figure().gca()
    for i, r in enumerate(r_values):
        big_r = analytic.prox_radius(d, r)
        x1 = np.linspace(-1.05 * big_r, 1.05 * big_r, n)
        ax.plot(x1, analytic.prox_density(x1, d, r), color=f"C{i}", label=f"$r = {r:g}$ ($R_* = {big_r:.3f}$)")
        ax.axvline(big_r, color=f"C{i}", ls=":", lw=0.8)
        ax.axvline(-big_r, color=f"C{i}", ls=":", lw=0.8)
    if ymax is not None:
        ax.set_ylim(0, ymax)
    ax.set_xlabel("$x_1$ (on the line $x = x_1 e_1$)")
    ax.set_ylabel(r"density of $\eta^*$")
    ax.set_title(f"$\\eta^* = \\mathrm{{prox}}_{{\\mathcal{{E}}_K}}(\\delta_0)$, $d = {d}$")
    legend_outside(ax, "below", ncols=1)
    return ax


def plot_radius_cdfs(samples: dict, d: int, ax=None):
    r"""Empirical CDFs of :math:`\|x\|` for ``{r: sample [n, d]}`` of :math:`\eta^*` (solid steps) against the exact
    radial law (:func:`mmdflow.analytic.radial_cdf`, black dashed): a smooth CDF in the ball case, a unit step at
    :math:`R_*` in the sphere case."""
    ax = ax or plt.figure().gca()
    rmax = 1.1 * max(analytic.prox_radius(d, q) for q in samples)
    grid = np.linspace(0, rmax, 600)
    for i, (r, x) in enumerate(samples.items()):
        kind = "sphere" if analytic.is_sphere_case(d, r) else "ball"
        plot_ecdf(np.linalg.norm(_np(x), axis=1), ax, color=f"C{i}", lw=2.4, alpha=0.7,
                  label=f"$r = {r:g}$ ({kind}), {len(x)} samples")
        ax.plot(grid, analytic.radial_cdf(grid, d, r), color="k", ls="--", lw=1.0,
                label="exact radial law" if i == 0 else None)
    ax.set_xlim(0, rmax)
    ax.set_xlabel(r"radius $\|x\|$")
    ax.set_ylabel(r"$P(\|X\| \leq$ radius$)$")
    ax.set_title(f"Radii of exact samples of $\\eta^*$, $d = {d}$")
    legend_outside(ax, "below", ncols=1)
    return ax


def plot_frostman_profiles(profiles: dict, ax=None):
    r"""Frostman potential :math:`U(\rho e) - C` against :math:`\rho/R_*` for ``{label: (rho/R*, U - C, stderr)}``:
    zero on the support (:math:`\rho\le R_*`, ball case) or at :math:`\rho = R_*` (sphere), non-negative elsewhere."""
    ax = ax or plt.figure().gca()
    for i, (label, (q, u, se)) in enumerate(profiles.items()):
        q, u, se = _np(q), _np(u), _np(se)
        ax.plot(q, u, color=f"C{i}", label=label)
        ax.fill_between(q, u - 2 * se, u + 2 * se, color=f"C{i}", alpha=0.2, linewidth=0)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.axvline(1, color="0.3", lw=0.8, ls=":")
    ax.set_xlabel(r"$\|x\| / R_*$")
    ax.set_ylabel(r"$U(x) - C$")
    ax.set_title("Frostman potential along a ray")
    legend_outside(ax, "below", ncols=1)
    return ax


def plot_support_radius(t_final: float, d: int, r: float, taus: Sequence[float], ax=None):
    r"""Support radius of the limit curve, :math:`R(t) = ((2-r)t)^{1/(2-r)}R_*`, and of the JKO iterates,
    :math:`c_n R_*` at :math:`t = n\tau`, for each step size."""
    ax = ax or plt.figure().gca()
    big_r = analytic.prox_radius(d, r)
    t = np.linspace(0, t_final, 400)
    ax.plot(t, analytic.support_radius(t, d, r), color="k", lw=1.5, label=r"limit curve $\gamma(t)$")
    for i, tau in enumerate(taus):
        n = np.arange(0, int(round(t_final / tau)) + 1)
        ax.plot(n * tau, analytic.jko_scale(n, tau, r) * big_r, "o-", ms=3, lw=0.8, color=f"C{i}",
                label=f"JKO, $\\tau = {tau:g}$")
    ax.set_xlabel("time $t$")
    ax.set_ylabel("support radius")
    ax.set_title(f"Support radius, $d = {d}$, $r = {r:g}$")
    ax.legend(fontsize=8.5, loc="lower right" if r < 1 else "upper left")   # the side the curves leave free
    return ax


def plot_jko_errors(errors: dict, ax=None):
    r"""Log-log error of the JKO radius at a fixed time against :math:`\tau` for ``{r: (taus, errors)}``,
    with the least-squares slope in the legend and a slope-one guide."""
    ax = ax or plt.figure().gca()
    for i, (r, (taus, err)) in enumerate(errors.items()):
        taus, err = np.asarray(taus, dtype=float), np.asarray(err, dtype=float)
        slope, icpt = np.polyfit(np.log(taus), np.log(err), 1)
        ax.loglog(taus, err, "o", color=f"C{i}", label=f"$r = {r:g}$: fitted slope {slope:.2f}")
        ax.loglog(taus, np.exp(icpt) * taus**slope, "-", color=f"C{i}", lw=0.8)
    all_taus = np.concatenate([np.asarray(v[0], dtype=float) for v in errors.values()])
    first = next(iter(errors.values()))
    ref = np.asarray(first[1], dtype=float)[0] * np.sort(all_taus) / np.max(all_taus)
    ax.loglog(np.sort(all_taus), ref, "k--", lw=0.8, label="slope 1")
    ticks = np.unique(all_taus)
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.minorticks_off()
    ax.set_xlabel(r"step size $\tau$")
    ax.set_ylabel(r"$|c_N - s(t)|\,R_*$ at $t = N\tau$")
    ax.set_title("JKO error against the limit curve")
    legend_outside(ax, "right")
    return ax


def plot_flow_errors(curves: dict, ax=None, *, title: str | None = None, legend: bool = True):
    r""":math:`\mathcal D_K^2` of particle flows to :math:`\gamma(t)` against time, with the noise floor.

    Args:
        curves: ``{label: (times, d2, floor)}``, one colour each; the flow is drawn with markers, ``floor`` dotted
            and the band shades ``[floor, 2 floor]`` (up to twice the noise floor).
        legend: draw the legend (colours for the labels, black for the line kinds) below the figure (it needs a
            constrained layout); pass it for one of several panels.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax = ax or plt.figure().gca()
    handles = []
    for i, (label, (t, d2, noise)) in enumerate(curves.items()):
        t, d2, noise = _np(t), _np(d2), _np(noise)
        ax.plot(t, d2, "o-", ms=3.5, color=f"C{i}")
        ax.plot(t, noise, ":", color=f"C{i}", lw=1.3)
        ax.fill_between(t, noise, 2 * noise, color=f"C{i}", alpha=0.15, linewidth=0)
        handles.append(Patch(color=f"C{i}", label=label))
    handles += [Line2D([], [], color="k", marker="o", ms=3.5, label=schemes.label("particle_flow")),
                Line2D([], [], color="k", ls=":", label="noise floor"),
                Patch(color="0.5", alpha=0.3, label="up to 2x the floor")]
    ax.set_yscale("log")
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"$\mathcal{D}_K^2$ to $\gamma(t)$")
    ax.set_title(title or "Particle flow against the analytic curve")
    if legend:
        ax.figure.legend(handles=handles, loc="outside lower center", ncols=3)
    return ax


def plot_mean_radius(curves: dict, ax=None):
    r"""Ratio of the particles' mean radius to the analytic mean radius of :math:`\gamma(t)` against time,
    for ``{(d, r): (times, ratio)}`` (colour by ``r``; line style and marker by ``d``; legend right of the data)."""
    ax = ax or plt.figure(figsize=(6.4, 3.6), layout="constrained").gca()
    rs = sorted({r for _, r in curves})
    ds = sorted({d for d, _ in curves})
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D"]
    for (d, r), (t, ratio) in curves.items():
        k = ds.index(d) % 4
        ax.plot(_np(t), _np(ratio), marker=markers[k], ls=styles[k], ms=7 if k == 0 else 4.5, lw=1.4,
                color=f"C{rs.index(r)}", mfc=None if k == 0 else "none", mew=1.3, zorder=2 + k,
                label=f"$d = {d}$, $r = {r:g}$")   # filled large / hollow small: visible where curves coincide
    ax.axhline(1, color="0.3", lw=0.8)
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"mean $\|x_i\|$ / mean radius of $\gamma(t)$")
    ax.set_title("Mean radius of the particles relative to the analytic flow")
    legend_outside(ax, "right")
    return ax


def prox_radius_table(dims: Sequence[int], rs: Sequence[float]) -> Table:
    r"""The support radius :math:`R_*` of :math:`\eta^*` for every ``d`` (rows) and ``r`` (columns); sphere cases
    (:math:`d + r \ge 4`) are marked "(sphere)"."""
    rows = [[d] + [f"{analytic.prox_radius(d, r):.4f}" + (" (sphere)" if analytic.is_sphere_case(d, r) else "")
                   for r in rs] for d in dims]
    return Table(["$d$"] + [f"$R_*$, $r = {r:g}$" for r in rs], rows, align=["r"] * (1 + len(rs)))


def flow_summary_table(errors: dict, floors: dict, times: Sequence[float]) -> Table:
    r"""Per particle flow ``(d, r)``: :math:`\mathcal D_K^2` to :math:`\gamma(t)` over the expected noise floor and the
    ratio of mean radii (particles / :math:`\gamma(t)`) at each of ``times`` (nearest evaluated time).

    ``errors``: ``{(d, r): FlowErrors}`` (:func:`mmdflow.metrics.flow_errors`); ``floors``: ``{(d, r): [T]}``.
    """
    header = ["$d$", "$r$"]
    for t in times:
        header += [f"$\\mathcal D_K^2$ / floor, $t = {t:g}$", f"radius ratio, $t = {t:g}$"]
    rows = []
    for (d, r), e in errors.items():
        row = [d, f"{r:g}"]
        for t in times:
            i = int(np.argmin(np.abs(_np(e.times) - t)))
            row += [f"{float(e.d2[i] / floors[d, r][i]):.2f}", f"{float(e.radius_ratio[i]):.3f}"]
        rows.append(row)
    return Table(header, rows, align=["r"] * len(header))
