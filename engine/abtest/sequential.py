"""Always-valid inference: asymptotic confidence sequences for A/B effects.

Implements the asymptotic confidence sequence (CS) of Waudby-Smith, Arbour, Sinha, Kennedy
and Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences"
(Annals of Statistics, 2024; arXiv:2103.06476). For a mean of ``t`` i.i.d. contributions with
standard deviation ``sigma``, the interval

    estimate -/+ sigma * sqrt(2 (t rho^2 + 1) / (t^2 rho^2) * log(sqrt(t rho^2 + 1) / alpha))

covers the true mean at all ``t`` simultaneously with probability ``>= 1 - alpha``
asymptotically, so it can be looked at every day and acted on at any look. It is Robbins'
two-sided normal-mixture boundary with the variance estimated from the data; ``rho`` tunes the
time at which the sequence is tightest (:func:`optimal_rho2`).

For an A/B effect the "mean" is the delta-method estimate: a difference of ratio metrics is
asymptotically the mean of per-unit influence contributions over all ``t`` units of both arms,
so ``sigma = se * sqrt(t)``. Users keep adding carts after their first look; the sequence
treats each look's per-unit totals as the running data, which the tests check empirically.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import special

from engine.validation import check_confidence

from ._checks import as_name_list, check_columns, check_frame, treatment_arms
from .delta import normal_interval, ratio_difference
from .units import UnitData, aggregate


def optimal_rho2(t_opt: float, confidence: float = 0.95) -> float:
    """Mixture parameter ``rho^2`` that makes the CS tightest at time ``t_opt``.

    Minimising the width over ``u = t_opt rho^2 + 1`` gives ``u - log u = 1 - 2 log alpha``,
    solved by the lower branch of Lambert's W.

    >>> round(optimal_rho2(1000, 0.95) * 1000, 3)
    8.212
    """
    alpha = 1.0 - check_confidence(confidence)
    if not np.isfinite(t_opt) or t_opt <= 0:
        raise ValueError(f"t_opt == {t_opt!r}, must be a positive number of units")
    u = -special.lambertw(-(alpha**2) / np.e, k=-1).real
    return float((u - 1.0) / t_opt)


def cs_multiplier(t: np.ndarray, confidence: float, rho2: float) -> np.ndarray:
    """Half-width of the CS in units of the standard error ``sigma / sqrt(t)`` at time ``t``."""
    alpha = 1.0 - check_confidence(confidence)
    t = np.asarray(t, dtype=float)
    trho = t * rho2
    return np.sqrt(2.0 * (trho + 1.0) / trho * np.log(np.sqrt(trho + 1.0) / alpha))


def asymptotic_cs(
    estimate: np.ndarray,
    se: np.ndarray,
    t: np.ndarray,
    confidence: float = 0.95,
    t_opt: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence sequence ``(low, high)`` around estimates with standard errors ``se``.

    ``t`` is the number of units behind each estimate (both arms). ``t_opt`` must be fixed
    before seeing the data: the default is the smallest ``t`` given (the first look), which
    keeps the sequence reported for past looks unchanged as new looks arrive.
    """
    t = np.asarray(t, dtype=float)
    if np.any(t <= 0):
        raise ValueError(f"t has a value {t.min()!r}; numbers of units must be positive")
    rho2 = optimal_rho2(float(np.min(t)) if t_opt is None else t_opt, confidence)
    half = np.asarray(se, dtype=float) * cs_multiplier(t, confidence, rho2)
    estimate = np.asarray(estimate, dtype=float)
    return estimate - half, estimate + half


def _look_rows(
    data: UnitData, control: object, arms: list[object], metrics: list[str], confidence: float
) -> pd.DataFrame:
    rows = []
    control_mask = data.in_arm(control)
    arm_masks = {level: data.in_arm(level) for level in arms}
    for index, look_value in enumerate(data.looks):
        active = data.carts[index] > 0
        idx_c = np.flatnonzero(active & control_mask)
        carts_c = data.carts[index, idx_c]
        for level in arms:
            idx_t = np.flatnonzero(active & arm_masks[level])
            carts_t = data.carts[index, idx_t]
            for metric in metrics:
                row = {
                    "look": look_value,
                    "metric": metric,
                    "arm": level,
                    "n_units": idx_t.size,
                    "n_units_control": idx_c.size,
                    "estimate": np.nan,
                    "se": np.nan,
                }
                if idx_t.size >= 2 and idx_c.size >= 2:
                    sums = data.sums[metric][index]
                    diff = ratio_difference(sums[idx_t], carts_t, sums[idx_c], carts_c)
                    row["estimate"] = float(diff.abs_effect)
                    row["se"] = float(diff.abs_se)
                rows.append(row)
    table = pd.DataFrame(rows)
    table["ci_low"], table["ci_high"] = normal_interval(table["estimate"], table["se"], confidence)
    return table


def sequence_table(
    data: UnitData,
    control: object,
    arms: list[object],
    metrics: list[str],
    confidence: float,
    t_opt: float | None = None,
    running_intersection: bool = True,
) -> pd.DataFrame:
    """Confidence sequences from aggregated unit data (see :func:`confidence_sequence`)."""
    table = _look_rows(data, control, arms, metrics, confidence)
    t = (table["n_units"] + table["n_units_control"]).to_numpy(dtype=float)
    se = table["se"].to_numpy()
    # A look with zero spread (e.g. no coupon redeemed yet in either arm) says nothing about the
    # variance: its sequence is unbounded rather than the point [estimate, estimate], which the
    # running intersection would turn into an empty interval.
    finite = np.isfinite(table["estimate"].to_numpy()) & np.isfinite(se) & (se > 0)
    if not finite.any():
        raise ValueError("no look has at least two units in both arms of a comparison")
    if t_opt is None:
        t_opt = float(t[finite].min())
    low, high = asymptotic_cs(
        table["estimate"].to_numpy()[finite],
        table["se"].to_numpy()[finite],
        t[finite],
        confidence,
        t_opt,
    )
    table["cs_low"], table["cs_high"] = -np.inf, np.inf
    table.loc[finite, "cs_low"] = low
    table.loc[finite, "cs_high"] = high
    if running_intersection:
        grouped = table.groupby(["metric", "arm"], sort=False)
        table["cs_low"] = grouped["cs_low"].cummax()
        table["cs_high"] = grouped["cs_high"].cummin()
    return table


def confidence_sequence(
    df: pd.DataFrame,
    arm: str = "arm",
    control: object = "control",
    metrics: str | Iterable[str] = "profit",
    unit: str = "user_id",
    look: str = "day",
    confidence: float = 0.95,
    t_opt: float | None = None,
    running_intersection: bool = True,
) -> pd.DataFrame:
    """Asymptotic confidence sequence of each arm-minus-control effect at every look.

    At look ``d`` the analysis uses all carts with ``df[look] <= d`` (per-unit totals so far).
    Returns one row per (look, metric, arm) with ``n_units``, ``n_units_control``,
    ``estimate``, ``se``, the fixed-horizon interval ``ci_low``/``ci_high`` (NOT valid under
    peeking; kept for comparison) and the always-valid ``cs_low``/``cs_high``. ``t_opt``
    (units in both arms at which the CS is tightest) defaults to the first look's count; with
    ``running_intersection`` each CS is intersected with the earlier ones, so it only shrinks.
    Looks where an arm has fewer than two units give NaN estimates and an unbounded CS.
    """
    check_frame(df)
    confidence = check_confidence(confidence)
    metric_names = as_name_list(metrics, "metrics")
    if not metric_names:
        raise ValueError("metrics is empty; name at least one metric column")
    check_columns(df, {"arm": [arm], "unit": [unit], "look": [look], "metric": metric_names})
    data = aggregate(df, arm, unit, metric_names, look=look)
    arms = treatment_arms(data.arm_levels, arm, control)
    return sequence_table(
        data, control, arms, metric_names, confidence, t_opt, running_intersection
    )
