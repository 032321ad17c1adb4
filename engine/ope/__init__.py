"""Off-policy evaluation: estimate a policy's value from logged bandit feedback.

>>> from engine import ope
>>> table = ope.evaluate([1.0, 0.0], [0, 1], [0.5, 0.5], [[1.0, 0.0], [1.0, 0.0]])
>>> float(table.loc["ipw", "value"])
1.0

Main entry points: :func:`evaluate` (arrays -> table), :func:`summarize` / :func:`merge` /
:func:`finalize` (chunked, exactly mergeable), :func:`evaluate_stream` (iterable of chunks),
:func:`evaluate_log` (a decision log or a Parquet lake, in memory, streamed or on Spark), readers
for VW DSJSON and Open Bandit Pipeline dicts, :func:`weight_diagnostics` (when not to trust an
estimate) and :func:`forest_plot`.
"""

from engine.ope.api import evaluate, evaluate_stream, summarize
from engine.ope.diagnostics import WeightDiagnostics, weight_diagnostics
from engine.ope.estimators import (
    DEFAULT_DROS_LAMBDA,
    DEFAULT_ESTIMATORS,
    DEFAULT_SWITCH_THRESHOLD,
    ESTIMATORS,
    EstimatorParams,
)
from engine.ope.lake import evaluate_lake, evaluate_log
from engine.ope.logs import LogDataset, read_log_dataset
from engine.ope.merge import Summaries, Summary, finalize, merge
from engine.ope.plots import forest_plot
from engine.ope.readers import LoggedFeedback, from_obp, read_dsjson, target_probs_at_positions
from engine.ope.reward_model import cross_fit_reward_moments, cross_fit_rewards
from engine.ope.validation import validate

__all__ = [
    "DEFAULT_DROS_LAMBDA",
    "DEFAULT_ESTIMATORS",
    "DEFAULT_SWITCH_THRESHOLD",
    "ESTIMATORS",
    "EstimatorParams",
    "LogDataset",
    "LoggedFeedback",
    "Summaries",
    "Summary",
    "WeightDiagnostics",
    "cross_fit_reward_moments",
    "cross_fit_rewards",
    "evaluate",
    "evaluate_lake",
    "evaluate_log",
    "evaluate_stream",
    "finalize",
    "forest_plot",
    "from_obp",
    "merge",
    "read_dsjson",
    "read_log_dataset",
    "summarize",
    "target_probs_at_positions",
    "validate",
    "weight_diagnostics",
]
