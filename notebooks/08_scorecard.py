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
# - **Built with:** the {glue:md}`profile` profile: the numbers are the records that the chapters of this build
#   wrote when they ran, and, for the table of Sec. 6.1, the stored runs at the paper's settings.
# - **Download:** {download}`notebook (.ipynb) <08_scorecard.ipynb>`,
#   {download}`Jupytext source (.py) <08_scorecard.py>`.
# :::
#
# **The rule.** {glue:md}`rule`
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

# %% tags=["hide-input"]
def _converged(row):
    return "" if row.converged == "-" else f" **At the converged or corrected setting:** {row.converged}."


Table(["claim", "paper's setting and numbers / this book's setting", "measured here", "verdict"],
      [[f"**{r.paper}, {r.item}** ({r.chapter}): {r.claim}",
        f"**Paper:** {r.paper_setting}; its numbers: {r.paper_numbers}. **Here:** {r.book_setting}",
        f"**At the paper's setting:** {r.measured}.{_converged(r)}", f"**{r.verdict}**. Criterion: {r.why}"]
       for r in rows], align=["l"] * 4)

# %% mystnb={"figure": {"caption": "Verdicts per paper: how many of the claims this book addresses got each verdict of the rule above, in the profile of this build and from the stored runs.", "name": "fig-scorecard-verdicts"}}
import matplotlib.pyplot as plt

plot_verdicts(rows, title=f"Verdicts per paper ({profile} profile)")
plt.show()

# %% [markdown]
# The chapters explain each verdict: chapter 3 the table of Sec. 6.1, where at $r = 1.5$ the neural backward scheme
# is closer to $\gamma(t)$ than the particle flow at the paper's step and the particle flow is closer at a converged
# step; chapter 4 the pictures, where $\mathcal D_K^2$ to
# the training samples rewards copying them and a held-out sample of the same density tells the schemes apart
# from a sampler; chapter 5 MNIST; chapter 6 the interaction-force transport flows.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
from collections import Counter

counts = Counter(r.verdict for r in rows)
Table(["verdict", "claims"], [[v, counts.get(v, 0)] for v in scorecard.VERDICTS] + [["all", len(rows)]],
      caption=f"Key numbers: {len(rows)} claims, records of {len(records)} chapters")
