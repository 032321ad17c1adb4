"""Training policies online in the simulator and scoring them against truth-based baselines.

:func:`run_policy` trains and scores one policy; :func:`compare_policies` runs several over
several seeds (the decision-quality scoreboard); ``cartwise train`` / ``cartwise compare`` are
the command line.
"""

from simulator.training.loop import BASELINES, TrainingResult, run_policy
from simulator.training.scoreboard import compare_policies, summarise_over_seeds

__all__ = ["BASELINES", "TrainingResult", "compare_policies", "run_policy", "summarise_over_seeds"]
