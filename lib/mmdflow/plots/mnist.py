r"""Figures of the MNIST chapter: digit mosaics at a fixed pixel scale, the digit judge's curves and table.

Mosaics are drawn so that one pixel of a 28 x 28 digit is ``scale`` screen pixels at the book's 96 dpi
(``scale=2``: each digit 56 px on the page, as long as the figure is not wider than the text column, which
:func:`mosaic_figure` checks). The tiles follow the authors' images: one-pixel grey separators, 0 (background)
black, pixel values clipped to [0, 1].
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .common import COLUMN_WIDTH
from .tables import Table
from .. import schemes
from .targets import _mosaic_array

__all__ = ["DPI", "SIDE", "canvas", "evolution_canvas", "paper_rows", "paper_final", "mosaic_figure", "snapshot_columns",
           "plot_judge_curves", "judge_table"]

#: the book's figure resolution (``use_style``): screen pixels per inch.
DPI = 96
#: side of one MNIST digit in pixels.
SIDE = 28


def _np(t):
    return t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=float)


def snapshot_columns(times: torch.Tensor, wanted: Sequence[float]) -> list[int]:
    """Indices of the snapshots nearest to each wanted time (duplicates removed, in time order)."""
    t = times.detach().cpu().double()
    idx = sorted({int((t - float(w)).abs().argmin()) for w in wanted})
    return idx


def canvas(images, ncols: int | None = None) -> np.ndarray:
    """Digits ``[K, 784]`` (tensor or array) tiled ``ncols`` per row into one grey canvas with one-pixel separators
    (values clipped to [0, 1]); the input of :func:`mosaic_figure`."""
    return _mosaic_array(images, ncols=ncols, side=SIDE)


def evolution_canvas(trajectory, columns: Sequence[int], particles: Sequence[int]) -> np.ndarray:
    """The authors' layout: rows = the chosen particles, columns = the chosen snapshots (indices into
    ``trajectory.positions``, ``[S, N, 784]``); a grey canvas with one-pixel separators."""
    pos = trajectory.positions
    tiles = torch.stack([pos[c, p].reshape(SIDE, SIDE) for p in particles for c in columns])   # row-major
    return _mosaic_array(tiles, ncols=len(columns), side=SIDE)


def _grey(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=float)
    return a[..., :3].mean(axis=-1) if a.ndim == 3 else a


def paper_rows(img: np.ndarray, rows: int | None = None) -> np.ndarray:
    """The first ``rows`` particle rows of one of the authors' MNIST images (``[291, 291(, 4)]``: 10 x 10 tiles with
    one-pixel separators), as a grey canvas in the same layout."""
    g = _grey(img)
    n_rows = (g.shape[0] - 1) // (SIDE + 1)
    if g.shape[0] != n_rows * (SIDE + 1) + 1 or (g.shape[1] - 1) % (SIDE + 1):
        raise ValueError(f"expected a mosaic of {SIDE}x{SIDE} tiles with one-pixel separators, got shape {g.shape}")
    rows = n_rows if rows is None else rows
    return g[: rows * (SIDE + 1) + 1]


def paper_final(img: np.ndarray) -> np.ndarray:
    """The digits of the last column (latest time) of one of the authors' MNIST images: ``[rows, 784]``."""
    g = paper_rows(img)
    n_rows, n_cols = (g.shape[0] - 1) // (SIDE + 1), (g.shape[1] - 1) // (SIDE + 1)
    c0 = 1 + (n_cols - 1) * (SIDE + 1)
    return np.stack([g[1 + r * (SIDE + 1):1 + r * (SIDE + 1) + SIDE, c0:c0 + SIDE].reshape(-1)
                     for r in range(n_rows)])


def mosaic_figure(rows: Sequence[Sequence[tuple[np.ndarray, str]]], *, scale: float = 2.0,
                  row_labels: Sequence[str] | None = None, suptitle: str | None = None, gap: float = 0.25,
                  title_height: float = 0.32):
    """Grey canvases drawn at ``scale`` screen pixels per image pixel (at :data:`DPI`), in rows.

    Args:
        rows: per row, a list of ``(canvas [H, W] in [0, 1], title)``.
        scale: screen pixels per image pixel (2: a 28 x 28 digit is 56 px on the page).
        row_labels: a label left of each row.
        suptitle: a title above everything.
        gap: inches between panels.
        title_height: inches above each panel for its title (about 0.18 per line).

    Raises:
        ValueError: when the figure would be wider than the text column (:data:`COLUMN_WIDTH`), where the page
            would shrink it below ``scale``.
    """
    title_h, label_w = title_height, (0.3 if row_labels else 0.05)
    top = 0.4 if suptitle else 0.05
    sizes = [[(c.shape[1] * scale / DPI, c.shape[0] * scale / DPI) for c, _ in row] for row in rows]
    width = label_w + max(sum(w for w, _ in r) + gap * (len(r) - 1) for r in sizes) + 0.05
    if width > COLUMN_WIDTH + 1e-9:
        raise ValueError(f"the mosaics need {width:.2f} in at scale {scale:g}, more than the text column "
                         f"({COLUMN_WIDTH} in): use fewer or smaller panels per row")
    heights = [title_h + max(h for _, h in r) for r in sizes]
    height = top + sum(heights) + gap * (len(rows) - 1) + 0.05
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    y = height - top
    for r, (row, sz) in enumerate(zip(rows, sizes)):
        y -= heights[r]
        x = label_w
        for (canvas, title), (w, h) in zip(row, sz):
            ax = fig.add_axes((x / width, (y + heights[r] - title_h - h) / height, w / width, h / height))
            ax.imshow(np.clip(canvas, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(title, fontsize=9)
            x += w + gap
        if row_labels:
            fig.text(0.12 / width, (y + (heights[r] - title_h) / 2) / height, row_labels[r], rotation=90,
                     ha="center", va="center", fontsize=10)
        y -= gap
    if suptitle:
        fig.suptitle(suptitle, y=1 - 0.08 / height, va="top")
    return fig


def plot_judge_curves(judgements: Mapping[str, object], *, reference: float | None = None, axes=None,
                      threshold_label: str = "0.9"):
    """The digit judge along each run: mean top-class probability (left) and share of particles above the
    threshold (right) against time (linear up to 1, logarithmic beyond). ``judgements``: ``{scheme:
    TrajectoryJudgement}`` (registry names, shown by their labels); ``reference``: the mean confidence on the target digits (dashed line)."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 2.9), layout="constrained")
    for k, (name, jd) in enumerate(judgements.items()):
        t = _np(jd.times)
        axes[0].plot(t, _np(jd.mean_confidence), color=f"C{k}", label=schemes.label(name))
        axes[1].plot(t, _np(jd.share_above), color=f"C{k}", label=schemes.label(name))
    if reference is not None:
        axes[0].axhline(reference, color="0.4", ls="--", lw=1, label="target digits")
    axes[0].set_ylabel("mean top-class probability")
    axes[1].set_ylabel(f"share of particles above {threshold_label}")
    for ax in axes:
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("$t$")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0.0)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[1].legend(handles, labels, loc="upper left", fontsize=8)
    return axes


def judge_table(rows: Sequence[Mapping[str, object]], *, caption: str | None = None) -> Table:
    r"""One row per scheme: the run's settings next to its final :math:`\mathcal D_K^2`, the ratio to the particle
    flow's and the judge's scores. Each row is a mapping with the keys ``scheme`` (a registry name), ``steps, iterations, t, final,
    ratio, confidence, share, seconds`` (``iterations`` and ``seconds`` may be ``None``)."""
    out = []
    for r in rows:
        out.append([schemes.label(r["scheme"]), r["steps"], r["iterations"] if r["iterations"] is not None else "-",
                    f"{float(r['t']):g}", f"{float(r['final']):.4f}", f"{float(r['ratio']):.2f}",
                    f"{float(r['confidence']):.2f}", f"{float(r['share']):.2f}",
                    f"{float(r['seconds']):.0f} s" if r.get("seconds") is not None else "-"])
    return Table(["scheme", r"steps $\tau$", "Adam its./step", "end $t$", r"final $\mathcal D_K^2$",
                  "ratio to PF", "judge: mean conf.", "judge: share > 0.9", "time"], out,
                 align=["l", "l", "r", "r", "r", "r", "r", "r", "r"], caption=caption)
