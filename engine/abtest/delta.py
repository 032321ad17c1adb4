"""Delta-method inference for per-cart (ratio) metrics randomised by user.

A per-cart metric is a ratio over units: ``R = sum_i Y_i / sum_i N_i`` with ``Y_i`` the
unit's metric total and ``N_i`` its number of carts. Its first-order (delta-method)
expansion is the mean of the *linearised* contributions ``L_i = (Y_i - R N_i) / mean(N)``,
so ``Var(R) ~ var(L) / n``. Every function works along the last axis and broadcasts over
leading axes, so many simulated experiments can be analysed in one call.

>>> import numpy as np
>>> r, var = ratio_mean_var(np.array([2.0, 0.0, 4.0]), np.array([1.0, 1.0, 2.0]))
>>> float(r)
1.5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def linearise(y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Linearised contributions ``(y - R n) / mean(n)`` along the last axis (they sum to 0)."""
    y = np.asarray(y, dtype=float)
    n = np.asarray(n, dtype=float)
    ratio = y.sum(axis=-1, keepdims=True) / n.sum(axis=-1, keepdims=True)
    return (y - ratio * n) / n.mean(axis=-1, keepdims=True)


def ratio_mean_var(y: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ratio ``sum(y)/sum(n)`` and the delta-method variance of that estimate.

    ``y`` holds per-unit metric totals and ``n`` per-unit cart counts (last axis = units).
    The variance uses the unbiased (ddof=1) variance of the linearised contributions, so
    with one cart per unit it is exactly the squared standard error of a sample mean.
    """
    y = np.asarray(y, dtype=float)
    n = np.asarray(n, dtype=float)
    m = y.shape[-1]
    ratio = y.sum(axis=-1) / n.sum(axis=-1)
    lin = linearise(y, n)
    var = (lin**2).sum(axis=-1) / (m - 1) / m
    return ratio, var


@dataclass(frozen=True)
class Difference:
    """Treatment-minus-control comparison of one ratio metric (arrays broadcast over runs)."""

    control_mean: np.ndarray
    treatment_mean: np.ndarray
    abs_effect: np.ndarray
    abs_se: np.ndarray
    rel_effect: np.ndarray
    rel_se: np.ndarray


def ratio_difference(
    y_t: np.ndarray, n_t: np.ndarray, y_c: np.ndarray, n_c: np.ndarray
) -> Difference:
    """Absolute and relative effect of treatment on a ratio metric, with delta-method SEs.

    The arms are independent, so the variance of ``R_t - R_c`` is the sum of the arm
    variances; the relative effect ``R_t / R_c - 1`` has gradient ``(1/R_c, -R_t/R_c^2)``.
    A zero control mean gives a NaN relative effect.
    """
    r_t, v_t = ratio_mean_var(y_t, n_t)
    r_c, v_c = ratio_mean_var(y_c, n_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(r_c != 0, r_t / r_c - 1.0, np.nan)
        rel_var = np.where(r_c != 0, v_t / r_c**2 + r_t**2 * v_c / r_c**4, np.nan)
    return Difference(
        control_mean=r_c,
        treatment_mean=r_t,
        abs_effect=r_t - r_c,
        abs_se=np.sqrt(v_t + v_c),
        rel_effect=rel,
        rel_se=np.sqrt(rel_var),
    )


def normal_interval(
    estimate: np.ndarray, se: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided normal interval ``estimate -/+ z * se`` at level ``confidence``."""
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    estimate = np.asarray(estimate, dtype=float)
    se = np.asarray(se, dtype=float)
    return estimate - z * se, estimate + z * se


def two_sided_p(estimate: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Two-sided normal p-value of ``estimate / se``; a zero SE gives 1 (no effect) or 0."""
    estimate = np.asarray(estimate, dtype=float)
    se = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(estimate) / se
    z = np.where(se > 0, z, np.where(estimate == 0, 0.0, np.inf))
    return 2.0 * stats.norm.sf(z)
