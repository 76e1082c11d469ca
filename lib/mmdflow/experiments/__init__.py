"""Experiments: the only layer that imports schemes, metrics, closed forms and data together.

* :mod:`.targets` -- the three schemes of Altekrüger et al. (2023) on one functional (chapters 4 and 5),
  constant-step segments;
* :mod:`.interaction` -- the interaction-energy benchmark of Sec. 6.1 (chapter 3);
* :mod:`.seeds` -- multi-seed runs of the weighted-particle flows (chapter 6);
* :mod:`.fast` -- the fast-summation studies (chapter 7).
"""

from . import fast, interaction, scorecard, targets
from .interaction import InteractionResult, InteractionSettings, interaction_settings, run_interaction_case
from . import seeds
from .seeds import SeedRuns, run_seeds
from . import ift
from .targets import (NeuralSchedule, SchemeSettings, concat_trajectories, dirac_starts, format_runs,
                      rescore, run_in_segments, run_neural_segments, run_particle_segments, run_schemes, run_target,
                      target_energies)
from .targets import TargetScores, target_scores

__all__ = ["fast", "interaction", "targets", "seeds", "ift", "scorecard", "InteractionResult", "InteractionSettings", "interaction_settings",
           "run_interaction_case", "NeuralSchedule", "SchemeSettings", "concat_trajectories",
           "format_runs", "run_in_segments", "run_schemes", "run_target", "dirac_starts", "target_energies", "rescore",
           "run_neural_segments", "run_particle_segments", "SeedRuns", "run_seeds", "TargetScores", "target_scores"]
