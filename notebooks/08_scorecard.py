# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reproduction scorecard
#
# :::{admonition} About this page
# :class: note
# - **What it is:** every figure, table and claim of {cite:t}`altekrueger2023neural`, {cite:t}`gladin2024ift` and
#   {cite:t}`hertrich2024sliced` that this book addresses, with the paper's setting, the book's setting and profile,
#   the number measured here and a verdict.
# - **Built with:** the {glue:md}`profile:myst` profile: the numbers are the records that the chapters of this build
#   wrote when they ran, and, for the table of Sec. 6.1, the stored runs at the paper's settings.
# - **Download:** {download}`notebook (.ipynb) <08_scorecard.ipynb>`,
#   {download}`Jupytext source (.py) <08_scorecard.py>`.
# :::
#
# **The rule.** {glue:md}`rule:myst`
#
# The criterion of each claim is stated in its row, next to the verdict; the rules are part of the library
# (`mmdflow.experiments.scorecard.CLAIMS`), so that they can be read and rerun, and they are tested on synthetic
# records that must give each verdict. "The paper's numbers" are the numbers the paper itself reports for the item;
# where the paper's table or figure values could not be read, the row says so. The book's settings are those of the
# profile this site was built with, or of the stored runs; see each chapter for the comparison with the paper.

# %% tags=["parameters", "hide-input"]
# mmdflow: run-last
profile = "quick"     # the profile whose chapter records are scored (this page runs after all other chapters)

# %% tags=["hide-input"]
import mmdflow
from mmdflow.experiments import scorecard
from mmdflow.plots import use_style
from mmdflow.plots.scorecard import plot_verdicts
from mmdflow.plots.tables import Table, glue_markdown

use_style()

records = mmdflow.runtime.load_records(profile)
rows = scorecard.scorecard_rows(records)

# %% tags=["remove-cell"]
glue_markdown(profile=f"`{profile}`", rule=scorecard.RULE)

# %% [markdown]
# ## Verdicts at a glance
#
# One line per claim, the verdict first; the numbers, settings and criteria follow below the figure, under the
# same number.

# %% tags=["hide-input"]
def chapter(row):
    return f"chapter {int(row.chapter[:2])}"


Table(["", "verdict", "claim"],
      [[k, f"**{r.verdict}**", f"**{r.paper}, {r.item}**: {r.claim} ({chapter(r)})"] for k, r in enumerate(rows, 1)],
      align=["r", "l", "l"])

# %% mystnb={"figure": {"caption": "Verdicts per paper: how many of the claims this book addresses got each verdict of the rule above, in the profile of this build and from the stored runs.", "name": "fig-scorecard-verdicts"}}
import matplotlib.pyplot as plt

plot_verdicts(rows, title=f"Verdicts per paper ({profile} profile)")
plt.show()

# %% [markdown]
# ## Each claim: settings, numbers, criterion
#
# For every claim: the paper's setting and its own numbers; this book's setting and what it measured there; where
# the book shows that the paper's setting is not converged or not stable, the same claim at a converged or corrected
# setting; the criterion, the verdict and its reason. The chapters explain each verdict: chapter 3 the table of
# Sec. 6.1, chapter 4 the pictures, chapter 5 MNIST, chapter 6 the interaction-force transport flows.

# %% tags=["hide-input"]
from IPython.display import Markdown, display


def details(k, r):
    lines = [f"**{k}. {r.paper}, {r.item}** ({chapter(r)}): {r.claim}", "",
             f"* *The paper:* {r.paper_setting}. Its numbers: {r.paper_numbers}.",
             f"* *This book, at the paper's setting:* {r.book_setting}. Measured: {r.measured}."]
    if r.converged != "-":
        lines.append(f"* *At the converged or corrected setting:* {r.converged}.")
    lines.append(f"* *Verdict:* **{r.verdict}**. Criterion: {r.why}")
    return "\n".join(lines)


display(Markdown("\n\n".join(details(k, r) for k, r in enumerate(rows, 1))))

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
from collections import Counter

counts = Counter(r.verdict for r in rows)
Table(["verdict", "claims"], [[v, counts.get(v, 0)] for v in scorecard.VERDICTS] + [["all", len(rows)]],
      caption=f"Key numbers: {len(rows)} claims, records of {len(records)} chapters")
