"""Plots for the flows toward targets (chapters 4 and 5): snapshot grids, image mosaics, light animations.

Every helper takes trajectories as a dict ``{scheme name: Trajectory}`` (registry names, e.g. ``"neural_backward"``)
so that the schemes share rows, colours and time columns; the text shown for a scheme is its registry label
(:func:`mmdflow.schemes.label`). Nothing here calls ``show`` or
``savefig``; the animations are returned as matplotlib ``FuncAnimation`` objects,
and :func:`animation_html` turns one into an embeddable HTML snippet.
"""

from __future__ import annotations


from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation

from .. import schemes
from .common import COLUMN_WIDTH, plot_curves, plot_particles
from .tables import Table

#: Width in inches of the animations (at 96 dpi: 826 px, shown at the column width).
ANIMATION_WIDTH = 8.6

__all__ = [
    "plot_image_target",
    "image_mosaic",
    "mosaic_grid",
    "plot_energy_curves",
    "animate_particles",
    "animate_mosaics",
    "animation_html",
    "runs_table",
    "final_states",
    "plot_sweep",
]


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def plot_image_target(image, samples, *, axes=None, title: str = "target", s: float = 1.0):
    """The picture (grey levels ``[H, W]``) next to the target samples ``[M, 2]`` drawn from it. Returns the two Axes."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(6.0, 3.0))
    img = _np(image)
    axes[0].imshow(img, cmap="gray", vmin=0, vmax=1, extent=(-0.5, 0.5, -0.5 * img.shape[0] / max(img.shape),
                                                             0.5 * img.shape[0] / max(img.shape)))
    axes[0].set_title(f"{title}: picture")
    axes[0].set_xlabel("$x_1$")
    axes[0].set_ylabel("$x_2$")
    axes[0].grid(False)
    plot_particles(samples, axes[1], s=s, color="0.2", title=f"{title}: {len(samples)} samples")
    return axes


def _mosaic_array(images, *, ncols: int | None = None, side: int = 28, clip: bool = True) -> np.ndarray:
    """The tiled canvas of :func:`image_mosaic` as an array (grey separators of one pixel)."""
    imgs = _np(images).reshape(-1, side, side)
    k = imgs.shape[0]
    ncols = ncols or int(np.ceil(np.sqrt(k)))
    nrows = int(np.ceil(k / ncols))
    canvas = np.full((nrows * (side + 1) + 1, ncols * (side + 1) + 1), 0.5)
    for j in range(k):
        r, c = divmod(j, ncols)
        canvas[1 + r * (side + 1):1 + r * (side + 1) + side, 1 + c * (side + 1):1 + c * (side + 1) + side] = imgs[j]
    return np.clip(canvas, 0.0, 1.0) if clip else canvas


def image_mosaic(images, *, ncols: int | None = None, ax=None, side: int = 28, title: str | None = None,
                 clip: bool = True):
    """Tile images (``[K, side*side]`` or ``[K, side, side]``) into one grey picture on ``ax`` (white = 1 ink, black = 0).

    MNIST convention: 0 is the background, drawn black. Values are clipped to [0, 1]
    (particles of a flow may leave the pixel range) when ``clip``.
    """
    ax = ax or plt.figure(figsize=(3, 3)).gca()
    canvas = _mosaic_array(images, ncols=ncols, side=side, clip=clip)
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def mosaic_grid(trajs: Mapping[str, object], times: Sequence[float], *, panel: float = 1.9, ncols: int | None = None,
                suptitle: str | None = None):
    """Rows = schemes, columns = times: each panel is the mosaic of all particles (images) at that time.

    Axis labels: the row's scheme on the left, the snapshot time on top. A scheme without a snapshot within 5% of a
    column's time (e.g. a run that ended earlier) gets an empty panel saying so, never a copy of another time.
    The grid fits the text column.
    """
    names = list(trajs)
    panel = min(panel, (COLUMN_WIDTH - 0.4) / len(times))
    fig, axes = plt.subplots(len(names), len(times), figsize=(panel * len(times), panel * len(names) + 0.4),
                             squeeze=False)
    for r, name in enumerate(names):
        tr = trajs[name]
        for c, t in enumerate(times):
            gap = (tr.times.double() - float(t)).abs()
            i = int(gap.argmin())
            if float(gap[i]) > 0.05 * max(abs(float(t)), 1e-12) and float(gap[i]) > 1e-9:
                axes[r, c].set_axis_off()
                axes[r, c].text(0.5, 0.5, f"no snapshot\nat t = {float(t):.4g}\n(run ends at\nt = {float(tr.times[-1]):.4g})",
                                ha="center", va="center", fontsize=8, transform=axes[r, c].transAxes)
                continue
            image_mosaic(tr.positions[i], ax=axes[r, c], ncols=ncols, title=f"t = {float(tr.times[i]):.4g}")
            if c == 0:
                axes[r, c].set_ylabel(schemes.label(name), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_energy_curves(trajs: Mapping[str, object], ax=None, *, ylabel: str = r"$\mathcal{D}_K^2(\mu_t, \nu)$",
                       logy: bool = True, title: str | None = None, shift=None, xscale: str = "linear"):
    """The functional value stored in each trajectory against time, one curve per scheme.

    ``shift`` (a number) is subtracted before plotting, e.g. a lower bound so that a
    functional that is not a discrepancy can be shown on a log scale. ``xscale``: ``"linear"``, ``"log"``
    (times ``t = 0`` dropped by matplotlib) or ``"symlog"`` (linear below ``t = 1``, from ``t = 0``).
    """
    curves = {}
    for name, tr in trajs.items():
        e = tr.energies.double()
        ok = torch.isfinite(e)
        ys = e[ok] - (shift if shift is not None else 0.0)
        curves[schemes.label(name)] = (tr.times.double()[ok], ys)
    ax = plot_curves(curves, ax, xlabel="time $t$", ylabel=ylabel, logy=logy, title=title)
    if len(curves) == 1:
        ax.legend(list(curves))
    if xscale == "symlog":
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(left=0)
    elif xscale != "linear":
        ax.set_xscale(xscale)
    return ax


def frame_times(trajs: Mapping[str, object], frames: int, *, spacing: str = "linear") -> np.ndarray:
    """``frames`` animation times from 0 to the latest end time of the trajectories: evenly spaced
    (``"linear"``) or, for flows whose times span decades, 0 followed by geometrically spaced times from the
    first positive snapshot time on (``"log"``)."""
    if spacing not in ("linear", "log"):
        raise ValueError(f"spacing must be 'linear' or 'log', got {spacing!r}")
    end = max(float(tr.times[-1]) for tr in trajs.values())
    if spacing == "linear" or end <= 0:
        return np.linspace(0.0, end, frames)
    first = min(float(tr.times[tr.times > 0][0]) for tr in trajs.values() if bool((tr.times > 0).any()))
    return np.concatenate([[0.0], np.geomspace(first, end, frames - 1)])


def _frame_index(tr, t: float) -> int:
    """The last snapshot of ``tr`` at or before time ``t`` (a trajectory that ended earlier shows its end)."""
    times = tr.times.double()
    return max(0, int(torch.searchsorted(times, torch.tensor(t + 1e-9 * max(1.0, abs(t)), dtype=times.dtype),
                                         right=True)) - 1)


def _time_label(t: float) -> str:
    """A time as a reader writes it: ``3000``, ``48000``, ``2.5``, ``0.05`` (no exponent notation from 1e-3 to 1e6)."""
    if t == 0 or 1e-3 <= abs(t) < 1e6:
        return f"{t:.0f}" if abs(t) >= 100 else f"{t:.3g}"
    return f"{t:.2e}"


def _clock(names, trajs, t, idx) -> str:
    """Frame title: the frame's time, and a scheme's own time where it has no snapshot there (it ended earlier)."""
    late = [f"{schemes.label(n)} ended at t = {_time_label(float(trajs[n].times[i]))}" for n, i in zip(names, idx)
            if float(trajs[n].times[i]) < t * (1 - 1e-6) and i == len(trajs[n].times) - 1]
    return f"t = {_time_label(t)}" + (f" ({'; '.join(late)})" if late else "")


def _animation_figure(n_panels: int, height: float, dpi: int):
    fig, axes = plt.subplots(1, n_panels, figsize=(ANIMATION_WIDTH, height), dpi=dpi, squeeze=False)
    return fig, axes[0]


def _animate(fig, trajs, times, artists, show, clock, interval: int):
    """The ``FuncAnimation`` of :func:`animate_particles` / :func:`animate_mosaics`: at frame ``j`` each scheme's
    artist (one per scheme, in the order of ``trajs``) gets ``show(artist, positions)`` of its last snapshot at or
    before ``times[j]``, and the ``clock`` the frame's time (:func:`_clock`); the figure is closed."""
    names = list(trajs)

    def update(j):
        idx = [_frame_index(trajs[name], float(times[j])) for name in names]
        for artist, name, i in zip(artists, names, idx):
            show(artist, trajs[name].positions[i])
        clock.set_text(_clock(names, trajs, float(times[j]), idx))
        return list(artists) + [clock]

    update(0)
    anim = animation.FuncAnimation(fig, update, frames=len(times), interval=interval, blit=False)
    plt.close(fig)
    return anim


def animate_particles(trajs: Mapping[str, object], *, frames: int = 24, target=None, lim=None, s: float = 3.0,
                      dpi: int = 96, interval: int = 200, spacing: str = "linear"):
    """An animation of 2D particle trajectories, one panel per scheme, ``frames`` frames at common times
    (:func:`frame_times`), :data:`ANIMATION_WIDTH` inches wide, with the time of the frame above the panels.

    Each panel shows its scheme's last snapshot at or before the frame's time, so schemes with different snapshot
    times stay in step. Returns a ``FuncAnimation`` (the figure is closed so that it is not shown twice; use
    :func:`animation_html`).
    """
    names = list(trajs)
    times = frame_times(trajs, frames, spacing=spacing)
    if lim is None:
        allpts = np.concatenate([_np(tr.positions[-1]) for tr in trajs.values()]
                                + ([_np(target)] if target is not None else []))
        lo, hi = np.quantile(allpts, 0.002, axis=0), np.quantile(allpts, 0.998, axis=0)
        start = np.concatenate([_np(tr.positions[0]) for tr in trajs.values()])
        lo, hi = np.minimum(lo, start.min(0)), np.maximum(hi, start.max(0))
        pad = 0.05 * (hi - lo).max()
        lim = (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)
    elif np.isscalar(lim):
        lim = (-lim, lim, -lim, lim)
    aspect = (lim[3] - lim[2]) / (lim[1] - lim[0])
    fig, axes = _animation_figure(len(names), ANIMATION_WIDTH / len(names) * aspect + 0.8, dpi)
    scats = []
    for k, (ax, name) in enumerate(zip(axes, names)):
        if target is not None:
            tg = _np(target)
            ax.scatter(tg[:, 0], tg[:, 1], s=s * 0.8, color="0.62", linewidths=0)
        x = _np(trajs[name].positions[0])
        scats.append(ax.scatter(x[:, 0], x[:, 1], s=s, color=f"C{k}", linewidths=0))
        ax.set_xlim(lim[0], lim[1])
        ax.set_ylim(lim[2], lim[3])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(schemes.label(name), fontsize=11)
    clock = fig.suptitle("", fontsize=13)
    fig.tight_layout()

    return _animate(fig, trajs, times, scats, lambda sc, x: sc.set_offsets(_np(x)[:, :2]), clock, interval)


def animate_mosaics(trajs: Mapping[str, object], *, frames: int = 16, dpi: int = 96, interval: int = 250,
                    side: int = 28, spacing: str = "log"):
    """An animation of image-valued particles (e.g. MNIST), one mosaic per scheme, :data:`ANIMATION_WIDTH` inches
    wide, with the time of the frame above the mosaics; frames at common times (:func:`frame_times`, by default
    geometrically spaced), each scheme at its last snapshot at or before that time. Returns a ``FuncAnimation``."""
    names = list(trajs)
    times = frame_times(trajs, frames, spacing=spacing)
    fig, axes = _animation_figure(len(names), ANIMATION_WIDTH / len(names) + 0.8, dpi)
    for ax, name in zip(axes, names):
        image_mosaic(trajs[name].positions[0], ax=ax, side=side)
        ax.set_title(schemes.label(name), fontsize=11)
    ims = [ax.images[0] for ax in axes]
    clock = fig.suptitle("", fontsize=11)
    fig.tight_layout()

    return _animate(fig, trajs, times, ims, lambda im, x: im.set_data(_mosaic_array(x, side=side)), clock, interval)


def animation_html(anim, *, caption: str | None = None, embed_limit_mb: float = 8.0, frame_format: str = "png"):
    """An ``IPython.display.HTML`` object with the animation as JavaScript + embedded frames (``to_jshtml``), in a
    ``<figure>`` with ``caption`` (plain text) below it.

    ``frame_format="jpeg"`` keeps noisy images (e.g. MNIST particles) several times lighter than PNG.
    """
    import html

    from IPython.display import HTML

    import matplotlib as mpl

    if frame_format not in ("png", "jpeg"):
        raise ValueError(f"frame_format must be 'png' or 'jpeg', got {frame_format!r}")
    with mpl.rc_context({"animation.embed_limit": embed_limit_mb, "animation.frame_format": frame_format}):
        body = anim.to_jshtml(default_mode="once")
    if caption:
        body = (f'<figure class="mmdflow-animation">{body}<figcaption><p>{html.escape(caption)}</p></figcaption>'
                "</figure>")
    return HTML(body)


def runs_table(results: Mapping[str, Mapping[str, object]], *, value: str = "$\\mathcal D_K^2$",
               values: Mapping[str, str] | None = None, caption: str | None = None) -> Table:
    """``{experiment: {scheme: Trajectory}}`` as a table: particles, final time, the functional's initial and final
    value and the time spent in the scheme (training included). ``values`` names the functional per experiment
    (default ``value``)."""
    rows = []
    for exp, runs in results.items():
        name = (values or {}).get(exp, value)
        for scheme, tr in runs.items():
            rows.append([exp, schemes.label(scheme), tr.positions.shape[1], f"{float(tr.times[-1]):g}", name,
                         f"{float(tr.energies[0]):.3e}", f"{float(tr.energies[-1]):.3e}", f"{tr.wall_time:.1f} s"])
    return Table(["experiment", "scheme", "particles", "final t", "value", "initial", "final", "time"], rows,
                 align=["l", "l", "r", "r", "l", "r", "r", "r"], caption=caption)


def held_out_table(scores: Mapping[str, object], *, reference: str = "particle_flow", caption: str | None = None) -> Table:
    r"""``{experiment: TargetScores}`` (:func:`mmdflow.experiments.target_scores`) as a table: per scheme the final
    :math:`\mathcal D_K^2` to the training target and its ratio to the ``reference`` scheme's, and the
    :math:`\mathcal D_K^2` to the held-out sample with its ratio to the two-sample floor (1: as good as an
    i.i.d. sample of the density). ``reference``: a scheme's registry name."""
    rows = []
    for exp, sc in scores.items():
        ref = sc.train.get(reference)
        for scheme in sc.train:
            rows.append([exp, schemes.label(scheme), f"{sc.train[scheme]:.2e}",
                         "-" if ref is None else f"{sc.train[scheme] / ref:.1f}",
                         f"{sc.held_out[scheme]:.2e}", f"{sc.floor:.2e} [{sc.floor_low:.1e}, {sc.floor_high:.1e}]",
                         f"{sc.held_out[scheme] / sc.floor:.2f}"])
    n = {sc.n_held_out for sc in scores.values()}
    return Table(["experiment", "scheme", "$\\mathcal D_K^2$ to target", f"/ {schemes.label(reference)}",
                  f"to held-out ({'/'.join(map(str, sorted(n)))})", "floor: median [quartiles]", "/ floor"], rows,
                 align=["l", "l"] + ["r"] * 5, caption=caption)


def final_states(rows: Sequence[Sequence], *, lim, s: float | None = None, width: float = COLUMN_WIDTH,
                 suptitle: str | None = None):
    """Final states large: one row per scheme, panels side by side, each ``width / columns`` wide (half the text
    width for two columns) with the aspect ratio of ``lim``.

    Args:
        rows: per row a sequence of panels ``(title, content)``; ``content`` is ``[N, 2]`` particles (drawn as a
            scatter in the box ``lim``, marker area ``s`` or about ``100 / sqrt(N)`` as in the authors' figures),
            an ``[H, W]`` / ``[H, W, 3|4]`` image array (shown as is, without axes: e.g. the authors' own result
            image), or ``None`` (an empty panel with its title, e.g. "no image in the authors' repository").
        lim: ``(x0, x1, y0, y1)`` of the particle panels.
        width: figure width in inches (the book's text width by default).

    Returns:
        the Figure.
    """
    ncols = max(len(r) for r in rows)
    x0, x1, y0, y1 = lim
    panel_w = width / ncols
    panel_h = panel_w * (y1 - y0) / (x1 - x0)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(width, len(rows) * (panel_h + 0.35)), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(row):
                ax.set_axis_off()
                continue
            title, content = row[c]
            ax.set_title(title, fontsize=9)
            if content is None:
                ax.set_axis_off()
                ax.text(0.5, 0.5, "no image", ha="center", va="center", transform=ax.transAxes, color="0.4")
                continue
            arr = _np(content)
            if arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] > 2:
                size = s if s is not None else 40.0 / np.sqrt(arr.shape[0])
                ax.scatter(arr[:, 0], arr[:, 1], s=size, color="C0", linewidths=0)
                ax.set_xlim(x0, x1)
                ax.set_ylim(y0, y1)
                ax.set_aspect("equal", adjustable="box")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for side in ax.spines.values():                 # a full frame, as the authors' figures have
                    side.set_visible(True)
                    side.set_color("0.3")
            else:
                ax.imshow(arr, interpolation="antialiased")
                ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout(pad=0.3, h_pad=0.6, w_pad=0.4)
    return fig


def plot_sweep(entries: Sequence[Mapping], *, reference: float | None = None, reference_scheme: str = "particle_flow",
               ax=None, ylabel: str = r"$\mathcal{D}_K^2$ at the end"):
    """Final discrepancy of stored runs against Adam iterations per step (left, at the most common tau) and against
    tau (right, at the most common iteration count), one line per scheme; ``reference``: the value of the scheme
    ``reference_scheme`` (a registry name), a dashed line. ``entries``: dicts with ``scheme`` (a registry name),
    ``tau``, ``iterations``, ``final_dk2``. Returns the Axes."""
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 2.8))
    neural_entries = [e for e in entries if e.get("iterations")]
    taus = [e["tau"] for e in neural_entries]
    its = [e["iterations"] for e in neural_entries]
    tau0 = max(set(taus), key=taus.count)
    it0 = max(set(its), key=its.count)
    for k, scheme in enumerate(sorted({e["scheme"] for e in neural_entries})):
        mine = [e for e in neural_entries if e["scheme"] == scheme]
        a = sorted((e["iterations"], e["final_dk2"]) for e in mine if e["tau"] == tau0)
        b = sorted((e["tau"], e["final_dk2"]) for e in mine if e["iterations"] == it0)
        ax[0].plot(*zip(*a), marker="o", color=f"C{k}", label=schemes.label(scheme))
        ax[1].plot(*zip(*b), marker="o", color=f"C{k}", label=schemes.label(scheme))
    for a, xl in ((ax[0], f"Adam iterations per step ($\\tau = {tau0:g}$)"),
                  (ax[1], f"time step $\\tau$ ({it0} iterations per step)")):
        if reference is not None:
            a.axhline(reference, color="0.3", ls="--", lw=1, label=schemes.label(reference_scheme))
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel(xl)
        a.set_ylabel(ylabel)
    ax[0].legend(fontsize=8)
    return ax
