r"""The vocabulary of the reproduction scorecard (:mod:`mmdflow.experiments.scorecard`): the verdicts, the one
rule that gives them (:data:`RULE`), and the records a claim's rule works with.

A :class:`Claim` is judged at the paper's setting and, where one was run, at a converged setting: each is a
:class:`Finding` (:func:`finding` from a "lower is better" number, :func:`finding_if` from booleans); the two
make a :class:`Judgement`, which :func:`combine` turns into the verdict of :data:`RULE` and the reason shown with
it; a claim whose record is missing raises :class:`NotTested`. One :class:`Row` per claim is what the scorecard
page shows. :mod:`mmdflow.experiments.scorecard` exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

__all__ = ["Claim", "Finding", "Judgement", "NotTested", "Row", "RULE", "VERDICTS", "finding"]

REPRODUCED = "reproduced"
EXPLAINED = "reproduced at the paper's setting, explained otherwise"
PARTLY = "partly"
NOT = "not reproduced"
NOT_TESTED = "not tested here"
#: every verdict, in display order.
VERDICTS = (REPRODUCED, EXPLAINED, PARTLY, NOT, NOT_TESTED)
#: the paper gives no number for the item (or none could be read).
NOT_AVAILABLE = "not available"

#: the one rule for every claim, as shown on the scorecard page.
RULE = ("Each claim is judged first at the paper's own setting (or the closest setting the book runs, always "
        "shown), by the criterion stated in its row: *reproduced*, *partly* or *not reproduced*. Where the book "
        "shows that the paper's setting is not converged (a time step, an iteration count) or not stable, the claim "
        "is judged again at a converged or corrected setting and both results are shown. A claim that holds at the paper's setting but "
        "not at the converged one is *reproduced at the paper's setting, explained otherwise*, with the "
        "explanation; otherwise the verdict is the one at the paper's setting. *Not tested here*: a result the "
        "criterion needs is missing, and the row says which. Reason: a reproduction first asks whether the "
        "paper's experiment gives the paper's result; whether that result survives a converged discretisation is "
        "a second question, and the answer to it must not hide the first.")


class NotTested(Exception):
    """A claim cannot be judged: the message says which record or key is missing."""


class Finding(NamedTuple):
    """A claim judged at one setting: what was run, what was measured, and the criterion's verdict there
    (:data:`REPRODUCED`, :data:`PARTLY` or :data:`NOT`)."""

    setting: str
    measured: str
    verdict: str


class Judgement(NamedTuple):
    """What a claim's ``evaluate`` returns: the finding at the paper's setting, the finding at a converged setting
    (``None`` where the paper's setting is the converged one or none was run) and the explanation of a difference
    between the two (shown when the verdict is :data:`EXPLAINED`)."""

    at_paper: Finding
    converged: Finding | None = None
    explanation: str = ""


class Row(NamedTuple):
    """One row of the scorecard (:func:`scorecard_rows`); the first nine fields are also its positions 0-8."""

    paper: str
    item: str
    claim: str
    paper_setting: str
    chapter: str
    book_setting: str
    measured: str
    verdict: str
    why: str
    paper_numbers: str
    converged: str


def finding(setting: str, measured: str, worst: float, *, good: float = 3.0, fair: float = 10.0) -> Finding:
    """A :class:`Finding` from a "lower is better" number ``worst``: reproduced up to ``good``, partly up to
    ``fair``, not reproduced above (``nan``: not reproduced)."""
    verdict = REPRODUCED if worst <= good else PARTLY if worst <= fair else NOT
    return Finding(setting, measured, verdict)


def finding_if(setting: str, measured: str, ok: bool, part: bool = False) -> Finding:
    """A :class:`Finding` from booleans: reproduced if ``ok``, else partly if ``part``, else not reproduced."""
    return Finding(setting, measured, REPRODUCED if ok else PARTLY if part else NOT)


@dataclass(frozen=True)
class Claim:
    """One figure, table or statement of a paper, and the rule that judges it.

    Attributes:
        paper, item: the paper and its figure, table, section or theorem.
        claim: what the paper states (Markdown, math as ``$...$``).
        paper_setting: the paper's setting of the experiment (from the paper or the authors' code).
        chapter: the chapter that addresses it (its record is ``records[chapter]``).
        criterion: the claim's own test, shown on the page.
        evaluate: ``evaluate(records, stored) -> Judgement``; raises :class:`NotTested` or ``KeyError`` when a
            record or stored result it needs is missing.
        paper_numbers: the paper's own numbers for the item, or :data:`NOT_AVAILABLE` with the reason.
        stored: judged from stored results (``benchmarks/results``), not from the chapter's record.
    """

    paper: str
    item: str
    claim: str
    paper_setting: str
    chapter: str
    criterion: str
    evaluate: Callable[[dict, dict], Judgement]
    paper_numbers: str = NOT_AVAILABLE
    stored: bool = False


def combine(j: Judgement) -> tuple[str, str]:
    """The verdict of :data:`RULE` from a judgement, and the reason shown with it."""
    p, c = j.at_paper, j.converged
    if c is not None and p.verdict == REPRODUCED and c.verdict != REPRODUCED:
        return EXPLAINED, j.explanation or "the converged setting differs (no explanation recorded)"
    if c is not None and p.verdict != REPRODUCED and c.verdict == REPRODUCED:
        return p.verdict, "at the paper's setting the criterion fails; at the converged setting it holds" + (
            f": {j.explanation}" if j.explanation else "")
    return p.verdict, j.explanation
