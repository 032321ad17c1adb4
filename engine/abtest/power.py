"""Power and sample size for per-cart metrics randomised by user (two arms, equal split)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from engine.validation import check_confidence, check_number, check_positive, fail

from ._checks import check_columns, check_frame, check_no_missing
from .delta import linearise
from .units import aggregate


def _critical(alpha: float, two_sided: bool) -> float:
    check_confidence(alpha, "alpha")
    return float(stats.norm.isf(alpha / 2.0 if two_sided else alpha))


def sample_size(
    baseline_mean: float,
    baseline_sd: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = False,
    two_sided: bool = True,
) -> int:
    """Users per arm to detect an effect ``mde`` with probability ``power`` at level ``alpha``.

    ``baseline_sd`` is the per-user standard deviation of the metric (for a per-cart ratio
    metric: of the linearised per-user values, see :func:`pilot_sd`). ``mde`` is absolute, or
    a fraction of ``baseline_mean`` when ``relative``. Normal approximation:
    ``n = 2 sd^2 (z_alpha + z_power)^2 / mde^2``.

    >>> sample_size(baseline_mean=10.0, baseline_sd=1.0, mde=0.1)
    1570
    """
    sd = check_positive(baseline_sd, "baseline_sd")
    effect = abs(check_number(mde, "mde"))
    if effect == 0:
        raise fail(mde, "mde", "a finite nonzero number")
    check_confidence(power, "power")
    if relative:
        effect *= abs(check_number(baseline_mean, "baseline_mean"))
        if effect == 0:
            raise ValueError("baseline_mean == 0 with relative=True; the relative mde is undefined")
    z = _critical(alpha, two_sided) + float(stats.norm.ppf(power))
    return math.ceil(2.0 * (sd * z / effect) ** 2)


def achieved_power(
    n_per_arm: int,
    baseline_sd: float,
    mde: float,
    alpha: float = 0.05,
    two_sided: bool = True,
) -> float:
    """Power of the two-arm comparison with ``n_per_arm`` users per arm (normal approximation)."""
    n = check_positive(n_per_arm, "n_per_arm")
    sd = check_positive(baseline_sd, "baseline_sd")
    shift = abs(check_number(mde, "mde")) / (sd * math.sqrt(2.0 / n))
    z = _critical(alpha, two_sided)
    result = stats.norm.sf(z - shift)
    if two_sided:
        result += stats.norm.cdf(-z - shift)
    return float(result)


def pilot_sd(df: pd.DataFrame, metric: str, unit: str = "user_id") -> tuple[float, float]:
    """Per-cart mean of ``metric`` and the per-user SD of its delta-method linearisation.

    ``sd**2 / n`` is the delta-method variance of the per-cart mean over ``n`` users.
    """
    check_frame(df)
    check_columns(df, {"metric": [metric], "unit": [unit]})
    check_no_missing(df, unit)
    data = aggregate(df, unit, unit, [metric])
    y, n = data.sums[metric][-1], data.carts[-1]
    if y.size < 2:
        raise ValueError(f"column {unit!r} has {y.size} unit(s); a pilot needs at least two")
    lin = linearise(y, n)
    return float(y.sum() / n.sum()), float(np.sqrt((lin**2).sum() / (y.size - 1)))


def sample_size_from_pilot(
    df: pd.DataFrame,
    metric: str,
    mde: float,
    unit: str = "user_id",
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = False,
    two_sided: bool = True,
) -> int:
    """Users per arm for a per-cart metric, with the per-user variance from pilot carts."""
    mean, sd = pilot_sd(df, metric, unit)
    return sample_size(mean, sd, mde, alpha, power, relative, two_sided)
