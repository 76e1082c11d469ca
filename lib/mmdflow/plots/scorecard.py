"""The reproduction scorecard's figure: verdicts per paper."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import matplotlib.pyplot as plt

#: verdicts in display order (those of :data:`mmdflow.experiments.scorecard.VERDICTS`), with their colours.
VERDICT_COLOURS = {"reproduced": "C2", "reproduced at the paper's setting, explained otherwise": "C0",
                   "partly": "C1", "not reproduced": "C3", "not tested here": "0.7"}
#: short legend labels.
VERDICT_LABELS = {"reproduced at the paper's setting, explained otherwise": "reproduced at the paper's setting,\n"
                                                                          "explained otherwise"}


def plot_verdicts(rows: Sequence[Sequence[str]], ax=None, *, paper_col: int = 0, verdict_col: int = 7,
                  title: str | None = None):
    """Horizontal stacked bars: for each paper (rows of :func:`mmdflow.experiments.scorecard.scorecard_rows`), how
    many of its claims got each verdict. Returns the axes."""
    papers = list(dict.fromkeys(r[paper_col] for r in rows))
    counts = {p: Counter(r[verdict_col] for r in rows if r[paper_col] == p) for p in papers}
    unknown = {v for c in counts.values() for v in c} - set(VERDICT_COLOURS)
    if unknown:
        raise ValueError(f"unknown verdicts {sorted(unknown)}; known: {list(VERDICT_COLOURS)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.9 + 0.5 * len(papers)), layout="constrained")
    left = [0] * len(papers)
    for verdict, colour in VERDICT_COLOURS.items():
        widths = [counts[p][verdict] for p in papers]
        if any(widths):
            ax.barh(papers, widths, left=left, color=colour, label=VERDICT_LABELS.get(verdict, verdict))
            left = [a + b for a, b in zip(left, widths)]
    ax.set_xlabel("number of claims")
    ax.invert_yaxis()
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return ax
