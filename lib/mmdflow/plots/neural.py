"""Plots of the neural-schemes chapter: radial profiles, spheres, the benchmark (snapshots: :func:`mmdflow.plots.snapshot_grid`)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import analytic

__all__ = ["plot_radial_profile", "plot_sphere", "plot_benchmark_ratios"]


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def plot_radial_profile(x: torch.Tensor, t: float, r: float, ax=None, *, bins: int = 30, label: str | None = None,
                        color: str = "C0", exact: bool = True):
    r"""Histogram of :math:`\|x_i\|` against the exact law of :math:`\|X\|`, :math:`X\sim\gamma(t)`.

    Ball case (``d + r < 4``): the radial density :math:`\rho\mapsto s^{-1}\,p(\rho/s)` with ``p`` from
    :func:`mmdflow.analytic.prox_radial_density` and :math:`s = ((2-r)t)^{1/(2-r)}`; sphere case: a
    vertical line at the radius :math:`R(t)`. ``exact=False`` draws the histogram only.
    """
    ax = ax or plt.figure().gca()
    x = _np(x)
    d = x.shape[1]
    rad = float(analytic.support_radius(t, d, r))
    norms = np.linalg.norm(x, axis=1)
    ax.hist(norms, bins=np.linspace(0, 1.3 * rad, bins + 1), density=True, alpha=0.45, color=color,
            label=label or "particles")
    if not exact:
        pass
    elif d + r >= 4:
        ax.axvline(rad, color="k", lw=1.2, label=f"sphere radius R(t) = {rad:.3f}")
    else:
        sc = float(analytic.flow_scale(t, r))
        rho = np.linspace(0, rad * (1 - 1e-4), 400)
        ax.plot(rho, _np(analytic.prox_radial_density(rho / sc, d, r)) / sc, color="k", lw=1.2,
                label=r"exact law of $|X|$, $X\sim\gamma(t)$")
    ax.set_xlabel(r"$|x|$")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
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
    ax.plot_wireframe(rad * np.cos(u) * np.sin(v), rad * np.sin(u) * np.sin(v), rad * np.cos(v), color="0.6",
                      lw=0.4)
    ax.scatter(x[:, 0], x[:, 1], x[:, 2], s=s, color="C0", depthshade=False)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_zlabel("$x_3$")
    ax.set_box_aspect((1, 1, 1))
    if title:
        ax.set_title(title)
    return ax


def plot_benchmark_ratios(results: list, ax=None, *, factor: float = 3.0, title: str | None = None):
    r"""Ratio :math:`\mathcal D_K^2/\text{noise}` against :math:`t` for every run of the interaction benchmark.

    ``results``: :class:`mmdflow.experiments.interaction.InteractionResult` objects; one line per
    (scheme, d, r); a dashed line marks ``factor``.
    """
    ax = ax or plt.figure().gca()
    styles = {"backward": "-", "forward": "--", "particle": ":"}
    markers = {2: "o", 3: "s", 10: "^"}
    colors = {0.5: "C0", 1.0: "C1", 1.5: "C2"}
    for res in sorted(results, key=lambda q: (q.d, q.r, q.scheme)):
        ts = sorted(res.errors)
        ax.plot(ts, [res.ratio(t) for t in ts], ls=styles.get(res.scheme, "-"), marker=markers.get(res.d, "x"),
                color=colors.get(res.r, "C4"),
                label=f"{res.scheme} d={res.d} r={res.r:g}" + (f" ({res.iterations} its)" if res.iterations else ""))
    ax.axhline(factor, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\mathcal{D}_K^2(\mu_t, \gamma(t))$ / noise floor")
    ax.set_title(title or "Distance to the analytic curve, relative to the noise floor")
    ax.legend(fontsize=7, ncol=2)
    return ax
