"""Plots for the kernelised Wasserstein-Fisher-Rao chapter: loss bands over seeds, weighted particle panels.

The multi-seed helpers take the results of :func:`mmdflow.experiments.run_seeds`: a mapping
``{label: SeedRuns}`` (:class:`mmdflow.experiments.SeedRuns`).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..experiments.seeds import SeedRuns
from .common import COLUMN_WIDTH
from .tables import Table, mean_std

__all__ = ["FinalLoss", "plot_loss_bands", "plot_loss_comparison", "summarise_final",
           "final_loss_table", "comparison_table"]


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _check_results(results) -> Mapping[str, SeedRuns]:
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a mapping label -> SeedRuns (mmdflow.experiments.run_seeds), "
                        f"got {type(results).__name__}")
    for label, r in results.items():
        if not isinstance(r, SeedRuns):
            raise TypeError(f"results[{label!r}] must be a SeedRuns (mmdflow.experiments.run_seeds), "
                            f"got {type(r).__name__}")
    return results


class FinalLoss(NamedTuple):
    """Mean and standard deviation over the seeds of one scheme's final held-out loss (:func:`summarise_final`)."""

    mean: float
    std: float


def plot_loss_bands(results: Mapping[str, SeedRuns], ax=None, *, title: str | None = None,
                    ylabel: str = r"$\mathrm{MMD}^2$ (held-out)", xlabel: str = "iteration", legend: str | None = "right"):
    """Mean held-out loss against iterations, log scale, with a band of one standard deviation over seeds.

    Args:
        results: ``{label: SeedRuns}`` from :func:`mmdflow.experiments.run_seeds` (``loss`` ``[S, L]``,
            ``steps`` ``[L]``).
        ax: an Axes (a new figure when ``None``).

    The band is ``mean +- std`` over the seeds; its lower edge is clipped at the smallest loss over the
    seeds so that it stays positive on the log scale. One colour and line style per scheme; ``legend``:
    ``"right"`` of the data, ``"inside"`` or ``None``.
    """
    ax = ax or plt.figure(figsize=(COLUMN_WIDTH, 3.4), layout="constrained").gca()
    styles = ["-", "--", "-.", ":"]
    for i, (label, r) in enumerate(_check_results(results).items()):
        loss = _np(r.loss)
        steps = _np(r.steps)
        mean, std = loss.mean(0), loss.std(0)
        lo = np.maximum(mean - std, loss.min(0))
        n_seeds = loss.shape[0]
        ax.plot(steps, mean, color=f"C{i}", ls=styles[i % 4], lw=1.6,
                label=f"{label} ({n_seeds} seed{'s' if n_seeds > 1 else ''})")
        ax.fill_between(steps, lo, mean + std, color=f"C{i}", alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend == "right":
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    elif legend == "inside":
        ax.legend()
    return ax


def plot_loss_comparison(results_by_target: Mapping[str, Mapping[str, SeedRuns]], *, suffix: str = ""):
    """One :func:`plot_loss_bands` panel per target side by side, one shared legend below. Returns the figure."""
    fig, axes = plt.subplots(1, len(results_by_target), figsize=(COLUMN_WIDTH, 3.8), layout="constrained",
                             squeeze=False, sharey=True)
    for ax, (name, res) in zip(axes[0], results_by_target.items()):
        plot_loss_bands(res, ax, title=f"{name} target{suffix}", legend=None)
        ax.label_outer()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return fig


def summarise_final(results: Mapping[str, SeedRuns], digits: int = 2) -> dict[str, FinalLoss]:
    """``{label: FinalLoss(mean, std)}`` of the final held-out loss over the seeds (numpy ``std``, ``ddof=0``),
    rounded to ``digits`` significant digits."""
    out = {}
    for label, r in _check_results(results).items():
        final = _np(r.final)
        out[label] = FinalLoss(float(f"{final.mean():.{digits}g}"), float(f"{final.std():.{digits}g}"))
    return out


def final_loss_table(summaries: Mapping[str, Mapping[str, FinalLoss]], *, caption: str | None = None) -> Table:
    """``{target: {scheme: FinalLoss}}`` (:func:`summarise_final` per target) as a table: one row per target,
    one column per scheme (all schemes of all targets, in order of appearance), cells ``mean ± std``."""
    schemes = list(dict.fromkeys(k for summ in summaries.values() for k in summ))
    rows = [[target] + [mean_std(*summ[k]) if k in summ else "" for k in schemes] for target, summ in summaries.items()]
    return Table(["target"] + schemes, rows, align=["l"] + ["r"] * len(schemes), caption=caption)


def comparison_table(results_by_target: Mapping[str, Mapping[str, SeedRuns]], method: str, baseline: str) -> Table:
    """Per target: the ratio of the final held-out losses ``method / baseline`` per seed (smallest and largest),
    whether ``method`` is lower on every seed, and the share of zero-weight particles of ``method`` at the end of
    its first seed."""
    rows = []
    for target, res in results_by_target.items():
        a, b = _check_results(res)[method], res[baseline]
        ratio = _np(a.final) / _np(b.final)
        w = a.first.weights
        zero = "n/a" if w is None else f"{float((w[-1] == 0).double().mean()):.0%}"
        rows.append([target, f"{ratio.min():.3f} to {ratio.max():.3f}", "yes" if (ratio < 1).all() else "no", zero])
    return Table(["target", f"final loss, {method} / {baseline}, per seed", "lower on every seed",
                  "zero-weight particles (first seed)"], rows, align=["l", "r", "c", "r"])
