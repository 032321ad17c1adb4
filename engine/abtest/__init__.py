"""A/B analysis for growth teams: per-cart metrics randomised by user.

- :func:`compare`: effects per metric and arm (delta method, CUPED, Holm, optional
  always-valid confidence sequences) as a DataFrame.
- :func:`srm`: sample-ratio-mismatch check of the split of units.
- :func:`confidence_sequence`: asymptotic confidence sequences over looks (daily peeking).
- :func:`ship_verdicts`: ship / do not ship / inconclusive per arm, with reasons
  (:class:`MetricGuardrail`: a metric that must not get worse beyond a margin).
- :func:`sample_size`, :func:`sample_size_from_pilot`, :func:`achieved_power`: planning.
- :func:`effects_plot`, :func:`sequence_plot`: PNG figures.
"""

from .compare import DEFAULT_METRICS, compare
from .cuped import cuped_difference
from .delta import ratio_difference, ratio_mean_var
from .multiple import holm
from .plots import effects_plot, sequence_plot
from .power import achieved_power, pilot_sd, sample_size, sample_size_from_pilot
from .sequential import asymptotic_cs, confidence_sequence, optimal_rho2
from .srm import srm
from .verdicts import MetricGuardrail, Verdict, ship_verdicts

__all__ = [
    "DEFAULT_METRICS",
    "MetricGuardrail",
    "Verdict",
    "achieved_power",
    "asymptotic_cs",
    "compare",
    "confidence_sequence",
    "cuped_difference",
    "effects_plot",
    "holm",
    "optimal_rho2",
    "pilot_sd",
    "ratio_difference",
    "ratio_mean_var",
    "sample_size",
    "sample_size_from_pilot",
    "sequence_plot",
    "ship_verdicts",
    "srm",
]
