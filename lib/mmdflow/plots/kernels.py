"""Figures of chapter 1: kernel profiles and velocity fields."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .common import legend_outside

__all__ = ["plot_kernel_gallery", "plot_velocity_field"]


def plot_kernel_gallery(kernels: dict, ax=None, *, radius: float = 3.0, n: int = 400):
    """Profiles ``K(x, 0)`` against ``|x|`` for ``{label: kernel}`` (one colour and line style each, legend to the
    right of the data); returns the Axes."""
    ax = ax or plt.figure(figsize=(6.4, 3.6), layout="constrained").gca()
    rho = torch.linspace(0, radius, n, dtype=torch.float64)
    styles = ["-", "--", "-.", ":"]
    for i, (label, kernel) in enumerate(kernels.items()):
        ax.plot(rho.numpy(), kernel.profile(rho**2).numpy(), label=label, color=f"C{i}", ls=styles[i % 4], lw=1.6)
    ax.set_xlabel(r"distance $\|x-y\|$")
    ax.set_ylabel(r"$K(x, y)$")
    legend_outside(ax, "right")
    return ax


def plot_velocity_field(x, velocity, y=None, ax=None, *, title: str | None = None):
    """Particles ``x`` ``[N, 2]`` with arrows ``velocity`` ``[N, 2]``; target points ``y`` in grey."""
    ax = ax or plt.figure().gca()
    x, velocity = x.detach().cpu(), velocity.detach().cpu()
    if y is not None:
        y = y.detach().cpu()
        ax.scatter(y[:, 0], y[:, 1], s=3, color="0.6", label="target $\\nu$")
    ax.scatter(x[:, 0], x[:, 1], s=6, color="C0", label="particles $\\mu$")
    ax.quiver(x[:, 0], x[:, 1], velocity[:, 0], velocity[:, 1], color="C3", angles="xy", width=0.004)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    return ax
