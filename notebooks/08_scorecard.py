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
# A verdict is *reproduced* when the number measured here meets the rule stated after the verdict, *partly* when it
# comes close (for instance within ten noise floors where three are asked for), and *not reproduced* otherwise; *not
# run* means that the chapter did not run in this profile. The rules are part of the library
# (`mmdflow.experiments.scorecard.CLAIMS`), next to each claim, so that they can be read and rerun. The book's
# settings are those of the profile this site was built with; see each chapter for the comparison with the paper.

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
glue_markdown(profile=f"`{profile}`")

# %% tags=["hide-input"]
Table(["claim", "paper's setting / book's setting (profile)", "measured here", "verdict"],
      [[f"**{paper}, {item}** ({chapter}): {claim}", f"{paper_setting} / {book_setting}", measured,
        f"**{verdict}**: {why}"]
       for paper, item, claim, paper_setting, chapter, book_setting, measured, verdict, why in rows],
      align=["l"] * 4)

# %% mystnb={"figure": {"caption": "Verdicts per paper: how many of the claims this book addresses are reproduced, partly reproduced or not, in the profile of this build.", "name": "fig-scorecard-verdicts"}}
import matplotlib.pyplot as plt

plot_verdicts(rows, title=f"Verdicts per paper ({profile} profile)")
plt.show()

# %% [markdown]
# The chapters explain each verdict: chapter 3 the table of Sec. 6.1 and why the particle flow, at a converged step,
# is closer to the exact flow than the neural schemes at $r = 1.5$; chapter 4 the pictures, where $\mathcal D_K^2$ to
# the training samples rewards copying them and a held-out sample of the same density tells the schemes apart
# from a sampler; chapter 5 MNIST; chapter 6 the interaction-force transport flows.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print("claims:", len(rows), "| records of", len(records), "chapters")
