"""Confidence intervals: normal (delta-method), skewness-corrected and a Poisson bootstrap.

The skewness-corrected interval (:func:`skew_corrected_interval`, Hall 1992) needs the first
three moments of the per-row terms; their third co-moments merge chunk by chunk
(:func:`merge_third_comoment`) like the second ones.

The bootstrap gives every row an independent Poisson(1) count per replicate (the "Poisson
bootstrap", which approximates multinomial resampling and, unlike it, can be generated chunk by
chunk). Replicate ``b`` re-weights the per-row terms, so all replicates of all estimators come
from one blocked matrix product ``counts @ terms``; no estimator is re-run per replicate.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

BLOCK_ROWS = 2048
"""Rows per block of the bootstrap matrix product (fixed: results depend on it for a seed)."""


def normal_quantile(confidence: float) -> float:
    """Two-sided standard-normal critical value, e.g. 1.96 for ``confidence=0.95``.

    >>> round(normal_quantile(0.95), 4)
    1.96
    """
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _poisson1_thresholds() -> np.ndarray:
    """Cumulative Poisson(1) probabilities as float32, up to the last one below 1."""
    cdf, term, k = 0.0, math.exp(-1.0), 0
    out: list[np.float32] = []
    while True:
        cdf += term
        value = np.float32(cdf)
        if value >= np.float32(1.0):
            return np.array(out, dtype=np.float32)
        out.append(value)
        k += 1
        term /= k


_THRESHOLDS = _poisson1_thresholds()


def poisson_counts(rng: np.random.Generator, n_boot: int, n_rows: int) -> np.ndarray:
    """``(n_boot, n_rows)`` uint8 Poisson(1) counts by inversion of float32 uniforms.

    Probabilities match Poisson(1) to about 1e-7 (float32 resolution).
    """
    u = rng.random((n_boot, n_rows), dtype=np.float32)
    counts = np.zeros((n_boot, n_rows), dtype=np.uint8)
    for threshold in _THRESHOLDS:
        counts += u >= threshold
    return counts


def bootstrap_sums(
    terms: np.ndarray, n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson-bootstrap sums of the columns of ``terms`` (``n x p``).

    Returns ``(sums, counts)`` of shapes ``(n_boot, p)`` and ``(n_boot,)``: replicate ``b`` is
    ``sum_i c_bi terms_i`` and ``sum_i c_bi``. Memory is ``O(n_boot * BLOCK_ROWS)``.
    """
    n, p = terms.shape
    augmented = np.empty((n, p + 1))
    augmented[:, :p] = terms
    augmented[:, p] = 1.0
    acc = np.zeros((n_boot, p + 1))
    for start in range(0, n, BLOCK_ROWS):
        block = augmented[start : start + BLOCK_ROWS]
        counts = poisson_counts(rng, n_boot, block.shape[0]).astype(np.float64)
        acc += counts @ block
    return acc[:, :p], acc[:, p]


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the finite bootstrap replicates (NaN if there are none)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    alpha = 1.0 - confidence
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def third_comoment(centred: np.ndarray) -> np.ndarray:
    """``(p, p, p)`` sums of triple products of the centred ``(p, n)`` per-row terms."""
    p = centred.shape[0]
    out = np.empty((p, p, p))
    for j in range(p):
        for k in range(j, p):
            out[j, k] = out[k, j] = (centred[j] * centred[k]) @ centred.T
    return out


def merge_third_comoment(
    a: tuple[int, np.ndarray, np.ndarray],
    b: tuple[int, np.ndarray, np.ndarray],
    delta: np.ndarray,
) -> np.ndarray:
    """Third co-moment of the union of two row sets (Pebay 2008's pairwise update).

    ``a`` and ``b`` are ``(n, second co-moment, third co-moment)`` of each set and ``delta`` the
    mean of ``b`` minus the mean of ``a``.
    """
    (na, m2a, m3a), (nb, m2b, m3b) = a, b
    n = na + nb
    cross = (na * m2b - nb * m2a) / n
    term = np.einsum("jk,l->jkl", cross, delta)
    sym = term + term.transpose(0, 2, 1) + term.transpose(2, 1, 0)
    cube = np.einsum("j,k,l->jkl", delta, delta, delta)
    return m3a + m3b + cube * (na * nb * (na - nb) / n**2) + sym


def skew_corrected_interval(
    value: float, sd: float, skewness: float, n: int, confidence: float
) -> tuple[float, float]:
    """Hall's (1992) skewness-corrected interval for a mean-like estimate.

    ``sd`` and ``skewness`` are those of the (linearised) per-row terms, ``n`` the row count.
    The studentised error ``T = (value - truth) / sd`` is mapped by the monotone cubic
    ``g(T) = T + s T^2 / 3 + s^2 T^3 / 27 + s / (6 n)`` (``s`` the skewness), whose
    ``sqrt(n) g(T)`` is standard normal up to ``O(1/n)``; inverting it gives the interval.
    With ``skewness == 0`` it is the normal interval.

    >>> lo, hi = skew_corrected_interval(1.0, 2.0, 3.0, 400, 0.95)
    >>> round(1.0 - lo, 3), round(hi - 1.0, 3)  # normal: 0.196 on both sides
    (0.177, 0.222)
    """
    return _hall_interval(value, sd, skewness, n, normal_quantile(confidence) / math.sqrt(n))


def _hall_interval(
    value: float, sd: float, skewness: float, n: int, critical: float
) -> tuple[float, float]:
    """Hall's cubic inverted at ``+-critical`` (the scaled critical value of the interval)."""
    if not math.isfinite(skewness) or skewness == 0.0:
        return value - sd * critical, value + sd * critical

    def inverse(y: float) -> float:
        u = 1.0 + skewness * (y - skewness / (6.0 * n))
        return 3.0 / skewness * (math.copysign(abs(u) ** (1.0 / 3.0), u) - 1.0)

    return value - sd * inverse(critical), value - sd * inverse(-critical)


def kurtosis_dof(kurtosis: float, n: int) -> float:
    """Degrees of freedom ``2 n / (kurtosis - 1)`` of a standard error from ``n`` terms.

    ``kurtosis`` is the plain fourth standardised moment ``m4 / m2^2`` of the terms (3 for
    normal ones). The sample variance's relative variance is about ``(kurtosis - 1) / n``, that
    of a chi-square over its ``dof`` is ``2 / dof``: matching them gives ``dof``, which is ``n``
    for normal terms (the exact ``n - 1``, to first order) and small for heavy-tailed ones.
    Infinite when ``kurtosis <= 1`` (two equally likely values: no variance in the variance).

    >>> kurtosis_dof(3.0, 500), round(kurtosis_dof(661.0, 3000), 2)
    (500.0, 9.09)
    """
    if not math.isfinite(kurtosis) or kurtosis <= 1.0:
        return math.inf
    return 2.0 * n / (kurtosis - 1.0)


def t_quantile(confidence: float, dof: float) -> float:
    """Two-sided Student-t critical value (the normal one when ``dof`` is infinite).

    >>> round(t_quantile(0.95, 10), 4), round(t_quantile(0.95, math.inf), 4)
    (2.2281, 1.96)
    """
    if math.isinf(dof):
        return normal_quantile(confidence)
    from scipy import stats  # lazy: scipy is slow to import

    return float(stats.t.ppf(0.5 + confidence / 2.0, dof))


def skew_t_interval(
    value: float, sd: float, skewness: float, kurtosis: float, n: int, confidence: float
) -> tuple[float, float]:
    """Hall's skewness-corrected interval with a Student-t critical value.

    As :func:`skew_corrected_interval`, but the cubic ``g`` is inverted at
    ``t_quantile(confidence, kurtosis_dof(kurtosis, n))`` instead of the normal quantile:
    the skewness correction handles the third moment, the t quantile the standard error's own
    noise under heavy tails (large ``kurtosis``). For normal terms it is the normal interval up
    to ``O(1/n)``.

    >>> lo, hi = skew_t_interval(1.0, 2.0, 0.0, 3.0, 400, 0.95)
    >>> round(1.0 - lo, 3), round(hi - 1.0, 3)  # dof 400: t = 1.966
    (0.197, 0.197)
    >>> lo, hi = skew_t_interval(1.0, 2.0, 3.0, 81.0, 400, 0.95)  # dof 10; Hall: 0.177, 0.222
    >>> round(1.0 - lo, 3), round(hi - 1.0, 3)
    (0.2, 0.257)
    """
    critical = t_quantile(confidence, kurtosis_dof(kurtosis, n)) / math.sqrt(n)
    return _hall_interval(value, sd, skewness, n, critical)
