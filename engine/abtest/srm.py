"""Sample-ratio mismatch (SRM): are units split across arms as planned?"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import check_columns, check_frame
from .units import aggregate

logger = logging.getLogger(__name__)

SRM_THRESHOLD = 0.001


def _expected_shares(expected: Mapping[object, float] | None, observed: list[object]) -> dict:
    if expected is None:
        if len(observed) < 2:
            raise ValueError(f"arm column has a single arm {observed!r}; need at least two")
        return {level: 1.0 / len(observed) for level in observed}
    if not isinstance(expected, Mapping) or len(expected) < 2:
        raise ValueError(
            f"expected == {expected!r}, must map at least two arms to their planned share"
        )
    unknown = [level for level in observed if level not in expected]
    if unknown:
        raise ValueError(f"expected has no planned share for arm(s) {unknown!r}")
    shares = {}
    for level, share in expected.items():
        value = float(share)
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"expected[{level!r}] == {share!r}, must be a positive share")
        shares[level] = value
    total = sum(shares.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"expected shares sum to {total!r}, must sum to 1")
    return shares


def srm(
    df: pd.DataFrame,
    arm: str = "arm",
    unit: str = "user_id",
    expected: Mapping[object, float] | None = None,
    threshold: float = SRM_THRESHOLD,
) -> dict:
    """Chi-square test of the units per arm against the planned split.

    ``expected`` maps each arm to its planned share (default: equal shares over the arms
    seen). Returns ``{"p_value", "chi2", "counts", "expected", "flagged"}`` where ``counts``
    and ``expected`` are unit counts per arm; a p-value below ``threshold`` is flagged and
    logged as a warning.

    >>> import pandas as pd
    >>> carts = pd.DataFrame({"user_id": [1, 1, 2, 3], "arm": ["a", "a", "b", "b"]})
    >>> srm(carts)["counts"]
    {'a': 1, 'b': 2}
    """
    check_frame(df)
    check_columns(df, {"arm": [arm], "unit": [unit]})
    return srm_from_counts(aggregate(df, arm, unit).counts(), expected, threshold)


def srm_from_counts(
    counts: Mapping[object, int],
    expected: Mapping[object, float] | None = None,
    threshold: float = SRM_THRESHOLD,
) -> dict:
    """The SRM test of :func:`srm` on units already counted per arm."""
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold == {threshold!r}, must be in (0, 1)")
    observed_arms = sorted(counts, key=str)
    shares = _expected_shares(expected, observed_arms)
    levels = sorted(shares, key=str)
    counts = {level: int(counts.get(level, 0)) for level in levels}
    total = sum(counts.values())
    planned = {level: total * shares[level] for level in levels}
    chi2, p_value = stats.chisquare(
        [counts[level] for level in levels], [planned[level] for level in levels]
    )
    flagged = bool(p_value < threshold)
    if flagged:
        logger.warning(
            "SAMPLE RATIO MISMATCH: units per arm %s vs planned %s (chi2 = %.1f, p = %.2g < %g); "
            "the assignment or logging is broken and effects are not trustworthy",
            counts,
            {level: round(value, 1) for level, value in planned.items()},
            chi2,
            p_value,
            threshold,
        )
    return {
        "p_value": float(p_value),
        "chi2": float(chi2),
        "counts": counts,
        "expected": planned,
        "flagged": flagged,
    }
