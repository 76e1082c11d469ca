"""Tables for the chapters: shown as Markdown tables in a notebook (HTML tables on the book's pages), as aligned
text in a terminal. No pandas.

A cell is a string (it may contain ``$...$`` math: the book renders chapter outputs as MyST Markdown), a number
(formatted with the column's format) or ``None`` (an empty cell).
"""

from __future__ import annotations

import re
from typing import Sequence

__all__ = ["Table", "fmt_sig", "mean_std", "glue_markdown"]


def fmt_sig(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` significant digits (``1.2e-04``-style below 1e-3 and from 1e4 on)."""
    v = float(value)
    if v != v:
        return "n/a"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
        return f"{v:.{max(digits - 1, 0)}e}"
    return f"{v:.{digits}g}"


def mean_std(mean: float, std: float, digits: int = 2) -> str:
    """``mean ± std``, each with ``digits`` significant digits."""
    return f"{fmt_sig(mean, digits)} ± {fmt_sig(std, 1)}"


_EXPONENT = re.compile(r"(?<=\d)e-(?=\d)")


def _no_break(cell: str) -> str:
    """A negative exponent written with the minus sign U+2212 (``4.8e−4``): a browser may break a line after a
    hyphen, which splits a number in two ("4.8e-" / "4") in a narrow column; after a minus sign it does not."""
    parts = cell.split("$")             # text outside math only: $...$ is typeset by MathJax
    return "$".join(_EXPONENT.sub("e\u2212", p) if k % 2 == 0 else p for k, p in enumerate(parts))


class Table:
    """A table with a header row, shown as a Markdown table in notebooks and as aligned text by ``str``.

    Args:
        header: column titles.
        rows: one sequence of cells per row, each as long as ``header``.
        formats: per column, a format spec for numeric cells (``".3g"``) or ``None`` (:func:`fmt_sig`); one
            string applies to every column.
        align: per column ``"l"``, ``"r"`` or ``"c"`` (default: numbers right, text left).
        caption: an optional line shown in bold above the table.
        note: an optional line shown below the table.

    Example::

        Table(["scheme", "final $\\mathcal D_K^2$"], [["NB", 1.2e-3], ["PF", 4e-4]], formats=".2e")
    """

    def __init__(self, header: Sequence[str], rows: Sequence[Sequence], *, formats=None,
                 align: Sequence[str] | None = None, caption: str | None = None, note: str | None = None):
        self.header = [str(h) for h in header]
        self.rows = [list(r) for r in rows]
        n = len(self.header)
        for i, row in enumerate(self.rows):
            if len(row) != n:
                raise ValueError(f"row {i} has {len(row)} cells, the header has {n}: {row!r}")
        if formats is None or isinstance(formats, str):
            formats = [formats] * n
        if len(formats) != n:
            raise ValueError(f"formats has {len(formats)} entries, the header has {n}")
        self.formats = list(formats)
        if align is None:
            align = ["r" if self.rows and all(isinstance(r[j], (int, float)) or r[j] is None for r in self.rows)
                     else "l" for j in range(n)]
        if len(align) != n or any(a not in ("l", "r", "c") for a in align):
            raise ValueError(f"align must be {n} of 'l', 'r', 'c', got {align!r}")
        self.align = list(align)
        self.caption, self.note = caption, note

    def _cell(self, value, j: int) -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return str(value)
        fmt = self.formats[j]
        if fmt is None:
            return str(value) if isinstance(value, int) else fmt_sig(value)
        return format(value, fmt)

    def cells(self) -> list[list[str]]:
        """The formatted cells, row by row (without the header)."""
        return [[self._cell(v, j) for j, v in enumerate(row)] for row in self.rows]

    def _repr_markdown_(self) -> str:
        def line(cells):
            return "| " + " | ".join(_no_break(c).replace("|", "\\|") for c in cells) + " |"

        rule = {"l": ":---", "r": "---:", "c": ":---:"}
        out = [f"**{self.caption}**", ""] if self.caption else []
        out += [line(self.header), "|" + "|".join(rule[a] for a in self.align) + "|"]
        out += [line(r) for r in self.cells()]
        if self.note:
            out += ["", self.note]
        return "\n".join(out)

    def __str__(self) -> str:
        body = [self.header] + self.cells()
        widths = [max(len(r[j]) for r in body) for j in range(len(self.header))]

        def line(cells):
            return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, self.align))

        out = [self.caption] if self.caption else []
        out += [line(self.header), "  ".join("-" * w for w in widths)] + [line(r) for r in body[1:]]
        if self.note:
            out.append(self.note)
        return "\n".join(s.rstrip() for s in out)

    def __repr__(self) -> str:
        return str(self)


def glue_markdown(**values: str) -> None:
    """Store Markdown snippets under names for the page's text (myst-nb *glue*; ``{glue:md}`name:myst``` in a
    Markdown cell shows the snippet, parsed as MyST so that its ``$...$`` math is typeset: without ``:myst`` myst-nb
    parses it as CommonMark and shows the dollars). Used for the live parts of each chapter's box (profile,
    settings) and the sentences that state a run's numbers.

    Does nothing outside a notebook kernel or without ``myst_nb`` installed.
    """
    try:
        from IPython import get_ipython
        from IPython.display import Markdown
        from myst_nb import glue
    except ImportError:
        return
    if get_ipython() is None:
        return
    for name, text in values.items():
        glue(name, Markdown(str(text)), display=False)
