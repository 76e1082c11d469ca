"""Plots and tables of the neural-schemes chapter: radial laws, spheres, the benchmark (snapshots:
:func:`mmdflow.plots.snapshot_grid`)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import analytic, schemes
from ..experiments.interaction import benchmark_schemes, best_runs, is_particle
from .common import legend_outside, plot_ecdf
from .tables import Table

__all__ = ["plot_radial_profile", "plot_sphere", "plot_benchmark_ratios", "benchmark_table", "scheme_table",
           "particle_step_table", "short_sci", "expected_floors"]

#: line styles of the benchmark's schemes, in the registry's display order (:func:`_style`).
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))


def _style(scheme: str):
    """The line style of a registered scheme: its position among the benchmark's schemes (:data:`LINESTYLES`)."""
    names = benchmark_schemes()
    return LINESTYLES[names.index(scheme) % len(LINESTYLES)] if scheme in names else "-"


def _order(scheme: str) -> int:
    """Position of a scheme in the registry's display order."""
    return schemes.scheme_names().index(scheme)


def short_sci(v: float) -> str:
    """A number in short scientific form without a padded exponent (``4.8e-4``), so that it fits a table cell."""
    m, e = f"{v:.1e}".split("e")
    return f"{m}e{int(e)}"


def expected_floors(results: list, *, n_pairs: int = 20_000, seed: int = 0) -> dict:
    r"""``{(n, d, r, t): expected noise floor}`` (:func:`mmdflow.metrics.flow_noise_floor`, from ``n_pairs`` exact
    pairs) for every run and time of ``results``: the mean of the statistic between two exact samples, not the
    single-sample estimate stored with a run, whose Monte Carlo error makes all ratios of one time move together."""
    from .. import metrics

    out = {}
    for q in results:
        for t in q.errors:
            key = (q.n_particles, q.d, q.r, t)
            if key not in out:
                out[key] = metrics.flow_noise_floor(q.n_particles, t, q.d, q.r, n_pairs=n_pairs,
                                                    generator=torch.Generator().manual_seed(seed))
    return out


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def plot_radial_profile(x: torch.Tensor, t: float, r: float, ax=None, *, label: str | None = None,
                        color: str = "C0", exact: bool = True):
    r"""The radial profile of particles ``x`` ``[N, d]`` as the empirical CDF of :math:`\|x_i\|`, against the exact
    law of :math:`\|X\|`, :math:`X\sim\gamma(t)` (:func:`mmdflow.analytic.radial_cdf`, black dashed): smooth in the
    ball case ``d + r < 4``, a unit step at the radius :math:`R(t)` in the sphere case. ``exact=False`` draws the
    particles only (several schemes on one Axes)."""
    ax = ax or plt.figure().gca()
    x = _np(x)
    d = x.shape[1]
    rad = float(analytic.support_radius(t, d, r))
    plot_ecdf(np.linalg.norm(x, axis=1), ax, color=color, lw=1.8, label=label or "particles")
    if exact:
        rho = np.linspace(0, 1.3 * rad, 600)
        ax.plot(rho, analytic.radial_cdf(rho, d, r, t=t), color="k", ls="--", lw=1.0, label="exact law")
    ax.set_xlim(0, 1.3 * rad)
    ax.set_xlabel(r"radius $\|x\|$")
    ax.set_ylabel("fraction of radii below")
    ax.legend(loc="upper left")
    return ax


def plot_sphere(x: torch.Tensor, t: float, r: float, ax=None, *, s: float = 1.0, title: str | None = None):
    r"""3D scatter of particles ``[N, 3]`` with the wire frame of the sphere of radius :math:`R(t)` (d = 3)."""
    x = _np(x)
    if x.shape[1] != 3:
        raise ValueError(f"plot_sphere needs points of shape (N, 3), got {x.shape}")
    if ax is None:
        ax = plt.figure(figsize=(4, 4)).add_subplot(projection="3d")
    rad = float(analytic.support_radius(t, 3, r))
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 25), np.linspace(0, np.pi, 13))
    ax.scatter(x[:, 0], x[:, 1], x[:, 2], s=s, color="C0", alpha=0.35, depthshade=False)
    ax.plot_wireframe(rad * np.cos(u) * np.sin(v), rad * np.sin(u) * np.sin(v), rad * np.cos(v), color="C3",
                      lw=0.7, alpha=0.9)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_zlabel("$x_3$")
    ax.set_box_aspect((1, 1, 1), zoom=0.85)   # room for the axis labels next to a neighbouring panel
    if title:
        ax.set_title(title)
    return ax


def plot_benchmark_ratios(results: list, ax=None, *, factor: float = 3.0, title: str | None = None,
                          floors: dict | None = None):
    r"""Ratio :math:`\mathcal D_K^2/\text{floor}` against :math:`t` for every run of the interaction benchmark.

    ``results``: :class:`mmdflow.experiments.interaction.InteractionResult` objects; one line per
    (scheme, d, r), a line style per scheme (the registry's order, :data:`LINESTYLES`), the scheme's short label
    (:func:`mmdflow.schemes.short_label`) in the legend; a dashed line marks ``factor``. ``floors``: ``{(n, d, r, t): floor}``, by default the
    expected noise floors of :func:`expected_floors` (not the runs' single-sample floors).
    """
    floors = expected_floors(results) if floors is None else floors
    ax = ax or plt.figure(figsize=(7.0, 3.6), layout="constrained").gca()
    markers = {2: "o", 3: "s", 10: "^"}
    colors = {0.5: "C0", 1.0: "C1", 1.5: "C2"}
    for res in sorted(results, key=lambda q: (q.d, q.r, _order(q.scheme))):
        ts = sorted(res.errors)
        ax.plot(ts, [res.errors[t].d2 / floors[res.n_particles, res.d, res.r, t] for t in ts],
                ls=_style(res.scheme), marker=markers.get(res.d, "x"),
                color=colors.get(res.r, "C4"),
                label=f"{schemes.short_label(res.scheme)}, $d = {res.d}$, $r = {res.r:g}$" + (f" ({res.iterations} its)" if res.iterations
                                                                         else f" ($dt = {res.tau:g}$)"))
    ax.axhline(factor, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("$t$")
    ax.set_ylabel(r"$\mathcal{D}_K^2(\mu_t, \gamma(t))$ / expected floor")
    ax.set_title(title or "Distance to the analytic curve, relative to the noise floor")
    legend_outside(ax, "right")
    return ax


def benchmark_table(results: list, *, times: Sequence[float] | None = None, caption: str | None = None,
                    finest_particle_step: bool = True, shell_time: float | None = None) -> Table:
    r"""The interaction benchmark as a table: per run (sorted by ``d``, ``r``, scheme) and time,
    :math:`\mathcal D_K^2` to :math:`\gamma(t)` and its ratio to the noise floor; for the neural backward scheme a
    second row "vs JKO" against its exact time-discrete iterate. Column "scheme": the scheme's label
    (:func:`mmdflow.schemes.label`); "its / step": Adam iterations per step of a neural scheme, the step of a
    particle scheme. Column "shell": the fraction of particles within 5% of the
    support radius :math:`R(t)` at ``shell_time`` (default: the last time) in the sphere cases :math:`d + r \ge 4`,
    where :math:`\gamma(t)` has all its mass there (the exact value is 1).

    ``results``: :class:`mmdflow.experiments.interaction.InteractionResult` objects (live or from JSON);
    ``finest_particle_step``: of several particle-flow runs of one case, show only the one with the smallest step
    (:func:`particle_step_table` shows them all).
    """
    if finest_particle_step:
        best = best_runs(results)
        results = [q for q in results
                   if not is_particle(q.scheme) or best[q.scheme, q.d, q.r] is q]
    rows_in = sorted(results, key=lambda q: (q.d, q.r, _order(q.scheme), q.iterations or 0, -q.tau))
    times = sorted({t for q in results for t in q.errors}) if times is None else list(times)
    t_shell = times[-1] if shell_time is None else shell_time
    header = (["scheme", "d", "r", "its / step"] + [h for t in times for h in (f"$\\mathcal D_K^2$, t = {t:g}", "ratio")]
              + [f"shell, t = {t_shell:g}"])

    def cells(errors):
        out = []
        for t in times:
            e = errors.get(t)
            out += ["n/a", "n/a"] if e is None else [f"{e.d2:.2e}", f"{e.d2 / e.noise:.1f}"]
        return out

    def shell(q):
        if not analytic.is_sphere_case(q.d, q.r):
            return "-"
        v = getattr(q, "shell", {}).get(t_shell)
        return "n/a" if v is None else f"{v[0]:.2f}"

    rows = []
    for q in rows_in:
        step = f"dt = {q.tau:g}" if q.iterations is None else q.iterations
        rows.append([schemes.label(q.scheme), q.d, f"{q.r:g}", step] + cells(q.errors) + [shell(q)])
        if q.jko_errors:
            rows.append(["vs JKO", None, None, None] + cells(q.jko_errors) + [None])
    return Table(header, rows, align=["l", "r", "r", "r"] + ["r"] * (2 * len(times) + 1), caption=caption)


def scheme_table(results: list, scheme: str, *, particle_step: float | None = None, caption: str | None = None,
                 times: Sequence[float] | None = None) -> Table:
    r"""One scheme of the interaction benchmark as a compact table: per case :math:`(d, r)` the ratio of
    :math:`\mathcal D_K^2` to :math:`\gamma(t)` over the noise floor at each time, :math:`\mathcal D_K^2` at the
    last time (short form, e.g. ``4.8e-4``), for the neural backward scheme the ratio to its JKO iterate at the last
    time, and in the sphere cases the shell fraction (1 for :math:`\gamma(t)`).

    ``scheme``: a registry name (:mod:`mmdflow.schemes`), e.g. ``"neural_backward"``; the caption starts with its
    label. ``particle_step``: for a scheme of the family ``"particle"``, the step ``dt`` of the runs to show
    (default: the finest step of each case, :func:`~mmdflow.experiments.interaction.best_runs`); the caption names
    the step that was run."""
    particle = is_particle(scheme)
    if particle_step is not None and not particle:
        raise ValueError(f"particle_step is a setting of a particle scheme, not of {scheme!r}")
    if particle_step is not None:
        runs = [q for q in results if q.scheme == scheme and abs(q.tau - particle_step) < 1e-12]
    else:
        runs = [q for k, q in best_runs(results).items() if k[0] == scheme]
    if not runs:
        raise ValueError(f"no {schemes.label(scheme)} runs" + (f" with dt = {particle_step:g}" if particle_step else ""))
    runs.sort(key=lambda q: (q.d, q.r))
    times = sorted({t for q in runs for t in q.errors}) if times is None else list(times)
    last = times[-1]
    jko = any(q.jko_errors for q in runs)          # the JKO iterate: interaction.JKO_SCHEME's runs only
    sphere = any(analytic.is_sphere_case(q.d, q.r) for q in runs)
    header = (["$d$", "$r$"] + [f"$t = {t:g}$" for t in times] + [f"$\\mathcal D_K^2$ at ${last:g}$"]
              + (["vs JKO"] if jko else []) + (["shell"] if sphere else []))
    rows = []
    for q in runs:
        row = [q.d, f"{q.r:g}"] + [("n/a" if t not in q.errors else f"{q.ratio(t):.1f}") for t in times]
        row.append("n/a" if last not in q.errors else short_sci(q.errors[last].d2))
        if jko:
            e = q.jko_errors.get(last)
            row.append("=" if q.r == 1.0 else "n/a" if e is None else f"{e.d2 / e.noise:.1f}")
        if sphere:
            v = q.shell.get(last) if analytic.is_sphere_case(q.d, q.r) else None
            row.append("-" if not analytic.is_sphere_case(q.d, q.r) else "n/a" if v is None else f"{v[0]:.2f}")
        rows.append(row)
    steps = sorted({q.tau for q in runs})
    its = sorted({q.iterations for q in runs if q.iterations})
    setting = (f"step $dt = {'/'.join(format(t, 'g') for t in steps)}$" if particle
               else f"$\\tau = {'/'.join(format(t, 'g') for t in steps)}$, {'/'.join(map(str, its))} Adam iterations per step")
    return Table(header, rows, align=["r"] * len(header),
                 caption=caption or f"{schemes.label(scheme)} ({setting}, $N = {runs[0].n_particles}$): "
                                    f"$\\mathcal D_K^2$ to $\\gamma(t)$ over its noise floor at each $t$"
                                    + ("; vs JKO: the same against the JKO iterate at the last time" if jko else "")
                                    + ("; shell: share of particles within 5% of $R(t)$ (exact: 1)" if sphere else ""))


def particle_step_table(results: list, *, scheme: str = "particle_flow", time: float | None = None,
                        caption: str | None = None) -> Table:
    r"""A particle scheme's convergence in its step: per case :math:`(d, r)`, the ratio of :math:`\mathcal D_K^2` to
    :math:`\gamma(t)` over the noise floor at ``time`` (default: the last benchmark time) for each step ``dt`` run.
    A converged flow reads about 1 at every step; the lag of explicit Euler from a perturbed Dirac (chapter 2)
    shows as a ratio that falls as ``dt`` shrinks. ``scheme``: a registry name of the family ``"particle"``."""
    if not is_particle(scheme):
        raise ValueError(f"particle_step_table needs a scheme of the family 'particle', got {scheme!r}")
    runs = [q for q in results if q.scheme == scheme]
    if not runs:
        raise ValueError(f"no {schemes.label(scheme)} runs")
    steps = sorted({q.tau for q in runs}, reverse=True)
    t = max(t for q in runs for t in q.errors) if time is None else time
    by = {(q.d, q.r, q.tau): q for q in runs}
    cases = sorted({(q.d, q.r) for q in runs})
    rows = [[d, f"{r:g}"] + [("-" if (d, r, dt) not in by else f"{by[d, r, dt].ratio(t):.2f}") for dt in steps]
            for d, r in cases]
    return Table(["$d$", "$r$"] + [f"$dt = {dt:g}$" for dt in steps], rows, align=["r"] * (2 + len(steps)),
                 caption=caption or f"{schemes.label(scheme)}: $\\mathcal D_K^2$ to $\\gamma({t:g})$ over the noise floor, for each "
                                    f"step $dt$ run")
