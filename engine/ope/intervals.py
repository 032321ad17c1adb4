"""Confidence intervals: normal (delta-method) and a vectorised Poisson bootstrap.

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
