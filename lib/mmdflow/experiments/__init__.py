"""Experiments: the only layer that imports schemes, metrics, closed forms and data together.

* :mod:`.targets` -- the three schemes of Altekrüger et al. (2023) on one functional (chapters 4 and 5),
  constant-step segments;
* :mod:`.interaction` -- the interaction-energy benchmark of Sec. 6.1 (chapter 3);
* :mod:`.seeds` -- multi-seed runs of the weighted-particle flows (chapter 6).
"""

from . import interaction, targets
from .interaction import InteractionResult, InteractionSettings, interaction_settings, run_interaction_case
from .seeds import SeedRuns, run_seeds  # also binds the submodule .seeds
from .targets import (SCHEMES, NeuralSchedule, SchemeSettings, concat_trajectories, format_runs, run_in_segments,
                      run_schemes)

__all__ = ["interaction", "targets", "InteractionResult", "InteractionSettings", "interaction_settings",
           "run_interaction_case", "SCHEMES", "NeuralSchedule", "SchemeSettings", "concat_trajectories",
           "format_runs", "run_in_segments", "run_schemes", "seeds", "SeedRuns", "run_seeds"]
