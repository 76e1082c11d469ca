"""Figures of chapter 2 (flows that start at a Dirac): prox densities, radii, JKO errors, flow accuracy."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import analytic

__all__ = [
    "plot_prox_densities",
    "plot_radius_histograms",
    "plot_frostman_profiles",
    "plot_support_radius",
    "plot_jko_errors",
    "plot_flow_errors",
    "plot_mean_radius",
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
        ax.plot(x1, analytic.prox_density(x1, d, r), color=f"C{i}", label=f"r = {r:g} ($R_*$ = {big_r:.3f})")
        ax.axvline(big_r, color=f"C{i}", ls=":", lw=0.8)
        ax.axvline(-big_r, color=f"C{i}", ls=":", lw=0.8)
    if ymax is not None:
        ax.set_ylim(0, ymax)
    ax.set_xlabel("$x_1$ (on the line $x = x_1 e_1$)")
    ax.set_ylabel(r"density of $\eta^*$")
    ax.set_title(f"$\\eta^* = \\mathrm{{prox}}_{{\\mathcal{{E}}_K}}(\\delta_0)$, d = {d}")
    ax.legend(fontsize=8)
    return ax


def plot_radius_histograms(samples: dict, d: int, ax=None, *, bins: int = 60, ymax: float = 8.0):
    r"""Histograms of :math:`\|x\|` for ``{r: sample [n, d]}`` of :math:`\eta^*`, with the analytic
    radial density :math:`|S^{d-1}|\rho^{d-1}\eta^*(\rho)` (ball case) or the sphere radius (sphere case)."""
    ax = ax or plt.figure().gca()
    for i, (r, x) in enumerate(samples.items()):
        rho = np.linalg.norm(_np(x), axis=1)
        big_r = analytic.prox_radius(d, r)
        kind = "sphere" if analytic.is_sphere_case(d, r) else "ball"
        ax.hist(rho, bins=bins, range=(0, 1.1 * max(analytic.prox_radius(d, q) for q in samples)), density=True,
                color=f"C{i}", alpha=0.45, label=f"r = {r:g}: sample ({kind})")
        if kind == "ball":
            grid = np.linspace(0, big_r * (1 - 1e-4), 400)
            ax.plot(grid, analytic.prox_radial_density(grid, d, r), color=f"C{i}", lw=1.5,
                    label=f"r = {r:g}: analytic radial density")
        else:
            ax.axvline(big_r, color=f"C{i}", ls="--", lw=1.2, label=f"r = {r:g}: sphere radius $R_*$ = {big_r:.3f}")
    ax.set_ylim(0, ymax)
    ax.set_xlabel(r"radius $\|x\|$")
    ax.set_ylabel("density of $\\|x\\|$ (clipped)")
    ax.set_title(f"Radii of exact samples of $\\eta^*$, d = {d}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.43, 1.0))
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
    ax.set_title(r"Frostman condition: $U(x) = \frac{1}{2}\|x\|^2 - \int\|x-y\|^r d\eta^*(y)$")
    ax.legend(fontsize=8)
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
                label=f"JKO, τ = {tau:g}")
    ax.set_xlabel("time $t$")
    ax.set_ylabel("support radius")
    ax.set_title(f"Support radius, d = {d}, r = {r:g}")
    ax.legend(fontsize=8)
    return ax


def plot_jko_errors(errors: dict, ax=None):
    r"""Log-log error of the JKO radius at a fixed time against :math:`\tau` for ``{r: (taus, errors)}``,
    with the least-squares slope in the legend and a slope-one guide."""
    ax = ax or plt.figure().gca()
    for i, (r, (taus, err)) in enumerate(errors.items()):
        taus, err = np.asarray(taus, dtype=float), np.asarray(err, dtype=float)
        slope, icpt = np.polyfit(np.log(taus), np.log(err), 1)
        ax.loglog(taus, err, "o", color=f"C{i}", label=f"r = {r:g}: fitted slope {slope:.2f}")
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
    ax.legend(fontsize=8)
    return ax


def plot_flow_errors(curves: dict, ax=None, *, title: str | None = None):
    r""":math:`\mathcal D_K^2` of particle flows to :math:`\gamma(t)` against time, with the noise floor.

    Args:
        curves: ``{label: (times, d2, floor)}``; ``floor`` is drawn dotted and the band shades
            ``[floor, 2 floor]`` (up to twice the noise floor).
    """
    ax = ax or plt.figure().gca()
    for i, (label, (t, d2, noise)) in enumerate(curves.items()):
        t, d2, noise = _np(t), _np(d2), _np(noise)
        ax.plot(t, d2, "o-", ms=3, color=f"C{i}", label=f"{label}: particle flow")
        ax.plot(t, noise, ":", color=f"C{i}", lw=1.2, label=f"{label}: noise floor (band: x2)")
        ax.fill_between(t, noise, 2 * noise, color=f"C{i}", alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"$\mathcal{D}_K^2$ to $\gamma(t)$ (K = $-\|x-y\|$)")
    ax.set_title(title or "Particle flow against the analytic curve")
    ax.legend(fontsize=7, ncols=2)
    return ax


def plot_mean_radius(curves: dict, ax=None):
    r"""Ratio of the particles' mean radius to the analytic mean radius of :math:`\gamma(t)` against time,
    for ``{(d, r): (times, ratio)}`` (colour by ``r``, line style by ``d``)."""
    ax = ax or plt.figure().gca()
    rs = sorted({r for _, r in curves})
    ds = sorted({d for d, _ in curves})
    styles = ["-", "--", ":", "-."]
    for (d, r), (t, ratio) in curves.items():
        ax.plot(_np(t), _np(ratio), "o", ls=styles[ds.index(d) % 4], ms=3, color=f"C{rs.index(r)}",
                label=f"d = {d}, r = {r:g}")
    ax.axhline(1, color="0.3", lw=0.8)
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"mean $\|x_i\|$ / mean radius of $\gamma(t)$")
    ax.set_title("Mean radius of the particles relative to the analytic flow")
    ax.legend(fontsize=7, ncols=2)
    return ax
