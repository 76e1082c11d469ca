"""Plotting helpers: each takes ``ax=None`` (a new figure when missing) and returns the Axes.

Generic helpers live in :mod:`mmdflow.plots.common`; chapter-specific ones in
``mmdflow.plots.<topic>``. Nothing here calls ``show`` or ``savefig``.
"""

from .common import plot_curves, plot_particles, snapshot_grid, support_circle, use_style

__all__ = ["use_style", "plot_particles", "snapshot_grid", "support_circle", "plot_curves"]
