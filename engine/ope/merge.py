"""Mergeable sufficient statistics of the per-row terms, and their finalisation.

A :class:`Summary` holds, for one estimator, the row count, the mean vector and the matrix of
centred cross-products of its per-row terms (merged exactly with Chan et al.'s pairwise
update), the tensor of centred triple products (Pebay's update; for the skewness-corrected
interval), the importance-weight sums for the diagnostics, for the doubly robust estimators
the variance gap of the ``"floor"`` interval (a plain sum) and, optionally, Poisson-bootstrap
sums. Chunks summarised separately and added give the same table as the whole data.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import overload

import numpy as np
import pandas as pd

from engine.ope.estimators import ESTIMATORS
from engine.ope.intervals import (
    merge_third_comoment,
    normal_quantile,
    percentile_interval,
    skew_corrected_interval,
    third_comoment,
)
from engine.validation import check_choice, check_confidence

logger = logging.getLogger(__name__)

#: The interval methods: ``"auto"`` (the default, see :func:`interval_method`: Hall's
#: skewness-corrected interval for ``ipw`` and ``snipw``, the variance-floored normal one for
#: ``dr`` and ``sndr``, none for ``dm``, the normal one for the others), ``"analytic"``
#: (normal, delta method), ``"bootstrap"`` (bootstrap percentiles), ``"skew"`` (Hall's
#: skewness-corrected interval) or ``"floor"`` (normal with the variance floor of
#: :meth:`Summary.floor_se` for the doubly robust family, normal for the others).
#: Why ``"auto"`` is the default: docs/ope-engine-logs.md.
CI_METHODS = ("auto", "analytic", "bootstrap", "skew", "floor")
DEFAULT_CI = "auto"
FLOOR_AUTO = ("dr", "sndr")
"""Estimators that ``"auto"`` gives the ``"floor"`` interval (when reward variances are known)."""
NO_INTERVAL_AUTO = ("dm",)
"""Estimators that ``"auto"`` gives no interval (``"none"``): their error is the reward model's
bias, which the spread of their per-row terms does not measure (DR is DM plus an estimate of it)."""


def describe_intervals(ci: str, methods: Mapping[str, str] | None = None) -> str:
    """Plain words for the intervals of method ``ci`` (for printed reports).

    ``methods`` is a table's ``attrs["ci_methods"]`` (what each row got); without it, ``"auto"``
    is described for every estimator as :func:`interval_method` resolves it.

    >>> describe_intervals("auto", {"ipw": "skew", "dr": "floor", "dm": "none"})[:75]
    "auto intervals (Hall's skewness-corrected for ipw; variance-floored normal "
    >>> describe_intervals("auto", {"dr": "floor", "dm": "none"})[48:]
    "none for dm, whose error is the reward model's bias)"
    """
    if ci == "auto":
        if methods is None:
            methods = {n: interval_method(n, ci) for n in ESTIMATORS}
        parts = [
            f"{words} for {', '.join(n for n, m in methods.items() if m == method)}{why}"
            for method, words, why in (
                ("skew", "Hall's skewness-corrected", ""),
                ("floor", "variance-floored normal", ""),
                ("analytic", "normal", ""),
                ("none", "none", ", whose error is the reward model's bias"),
            )
            if method in methods.values()
        ]
        return f"auto intervals ({'; '.join(parts)})"
    return {
        "analytic": "normal (analytic) intervals",
        "skew": "Hall's skewness-corrected intervals",
        "floor": "normal intervals, variance-floored for the doubly robust estimators",
    }.get(ci, f"{ci} intervals")


def interval_method(estimator: str, ci: str) -> str:
    """The interval ``ci`` gives ``estimator``: ``"auto"`` and ``"floor"`` resolved.

    ``"auto"`` is Hall's skewness-corrected interval for the estimators that weight rewards
    without a reward model (``ipw``, ``snipw``: their normal interval misses low when weighted
    rare rewards skew the terms), the ``"floor"`` interval for ``dr`` and ``sndr`` (their
    normal interval is too short on logs that happen to hold few heavily weighted purchases)
    no interval (``"none"``: NaN bounds and standard error) for ``dm``, whose normal interval
    measures only the sampling noise of the model's predictions, not the model's bias, and
    so covers the truth far less often than it claims (30-44% of 95% intervals on engine
    logs, docs/ope-engine-logs.md), and the normal one for the others (``on-policy``,
    ``switch-dr``, ``dr-os``). ``"analytic"`` still gives ``dm`` its sampling interval.
    ``"floor"`` is the normal interval for estimators without a weighted reward-model residual.
    A summary without reward variances gets the normal interval instead of the floored one
    (:meth:`Summary.interval_method`).

    >>> interval_method("ipw", "auto"), interval_method("dr", "auto"), interval_method("dr", "skew")
    ('skew', 'floor', 'skew')
    >>> interval_method("dm", "auto"), interval_method("dm", "analytic")
    ('none', 'analytic')
    """
    est = ESTIMATORS[estimator]
    if ci == "auto":
        if estimator in NO_INTERVAL_AUTO:
            return "none"
        if estimator in FLOOR_AUTO:
            return "floor"
        return "skew" if est.weights is not None and not est.needs_model else "analytic"
    if ci == "floor" and est.residual_column is None:
        return "analytic"
    return ci


COLUMNS = (
    "value",
    "ci_low",
    "ci_high",
    "se",
    "n",
    "ess",
    "max_weight",
    "mean_weight",
    "zero_target_share",
)


@dataclass(frozen=True, eq=False)
class Summary:
    """Sufficient statistics of one estimator over some rows (add two to merge them)."""

    estimator: str
    params: tuple[tuple[str, float], ...]
    n_actions: int
    n: int
    mean: np.ndarray  # (p,)
    comoment: np.ndarray  # (p, p): sum of outer products of centred terms
    weight_sum: float
    weight_sq_sum: float
    weight_max: float
    zero_target: int
    boot_sums: np.ndarray | None = field(default=None)  # (B, p)
    boot_counts: np.ndarray | None = field(default=None)  # (B,)
    comoment3: np.ndarray | None = field(default=None)  # (p, p, p): sum of centred triples
    # sum_i w_i^2 (sigma^2_i - (r_i - q_i)^2) of the estimator's residual weights, or None
    variance_gap: float | None = field(default=None)

    @classmethod
    def from_terms(
        cls,
        estimator: str,
        params: tuple[tuple[str, float], ...],
        n_actions: int,
        terms: np.ndarray,
        weight_stats: tuple[float, float, float] | None,
        zero_target: int,
        boot: tuple[np.ndarray, np.ndarray] | None = None,
        variance_gap: float | None = None,
    ) -> Summary:
        """Summarise the ``(p, n)`` per-row ``terms`` of one estimator.

        ``weight_stats`` is ``(sum, sum of squares, max)`` of its importance weights (see
        :func:`weight_stats`), or None for estimators without weights. ``variance_gap`` is
        :meth:`engine.ope.estimators.RowTerms.variance_gap` of the estimator's residual weights
        (doubly robust estimators with known reward variances; else None).
        """
        mean = terms.mean(axis=1)  # along contiguous rows: pairwise summation
        centred = terms - mean[:, None]
        w_sum, w_sq, w_max = (math.nan,) * 3 if weight_stats is None else weight_stats
        return cls(
            estimator,
            params,
            n_actions,
            terms.shape[1],
            mean,
            centred @ centred.T,
            w_sum,
            w_sq,
            w_max,
            int(zero_target),
            None if boot is None else boot[0],
            None if boot is None else boot[1],
            third_comoment(centred),
            None if variance_gap is None else float(variance_gap),
        )

    @property
    def bootstrap(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The Poisson-bootstrap ``(sums, counts)``, or None when the summary holds none."""
        if self.boot_sums is None or self.boot_counts is None:
            return None
        return self.boot_sums, self.boot_counts

    def __add__(self, other: Summary) -> Summary:
        """Merge the statistics of two disjoint sets of rows (Chan et al.'s update)."""
        if not isinstance(other, Summary):
            return NotImplemented
        for attr in ("estimator", "params", "n_actions"):
            if getattr(self, attr) != getattr(other, attr):
                raise ValueError(
                    f"cannot merge summaries with {attr} == {getattr(self, attr)!r} "
                    f"and {getattr(other, attr)!r}"
                )
        mine, theirs = self.bootstrap, other.bootstrap
        if (mine is None) != (theirs is None) or (
            mine is not None and theirs is not None and mine[0].shape != theirs[0].shape
        ):
            raise ValueError("cannot merge summaries with different n_bootstrap")
        if (self.variance_gap is None) != (other.variance_gap is None):
            raise ValueError(
                "cannot merge summaries with and without reward variances (variance_gap): "
                "pass estimated_variances (or contexts) for every chunk or for none"
            )
        gap = None
        if self.variance_gap is not None and other.variance_gap is not None:
            gap = self.variance_gap + other.variance_gap
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        comoment = self.comoment + other.comoment + np.outer(delta, delta) * (self.n * other.n / n)
        boot_sums = boot_counts = None
        if mine is not None and theirs is not None:
            boot_sums = mine[0] + theirs[0]
            boot_counts = mine[1] + theirs[1]
        comoment3 = None
        if self.comoment3 is not None and other.comoment3 is not None:
            comoment3 = merge_third_comoment(
                (self.n, self.comoment, self.comoment3),
                (other.n, other.comoment, other.comoment3),
                delta,
            )
        return Summary(
            self.estimator,
            self.params,
            self.n_actions,
            n,
            mean,
            comoment,
            self.weight_sum + other.weight_sum,
            self.weight_sq_sum + other.weight_sq_sum,
            max(self.weight_max, other.weight_max),
            self.zero_target + other.zero_target,
            boot_sums,
            boot_counts,
            comoment3,
            gap,
        )

    @property
    def value(self) -> float:
        """Point estimate."""
        return float(ESTIMATORS[self.estimator].value(self.mean))

    def _gradient(self) -> np.ndarray | None:
        """The estimate's gradient at the mean terms, or None (under 2 rows, or not finite)."""
        if self.n < 2:
            return None
        grad = ESTIMATORS[self.estimator].gradient(self.mean)
        return grad if np.all(np.isfinite(grad)) else None

    def _delta_se(self, floor_column: int | None = None) -> float:
        """Delta-method standard error; with ``floor_column``, floored by the variance gap."""
        grad = self._gradient()
        if grad is None:
            return math.nan
        var = float(grad @ (self.comoment / (self.n - 1)) @ grad)
        if floor_column is not None and self.variance_gap is not None:
            var += max(0.0, float(grad[floor_column]) ** 2 * self.variance_gap / (self.n - 1))
        var /= self.n
        return math.sqrt(var) if var >= 0 else math.nan

    @property
    def se(self) -> float:
        """Standard error by the delta method (the plain CLT one for linear estimators)."""
        return self._delta_se()

    @property
    def floor_se(self) -> float:
        """Standard error with the variance floor (the ``"floor"`` interval; NaN if unknown).

        With ``s^2`` the sample variance of the linearised per-row terms, ``c`` the gradient
        of the estimate along the weighted-residual column and ``G`` the variance gap
        ``sum_i w_i^2 (sigma^2_i - (r_i - q_i)^2)``, the variance is
        ``(s^2 + max(0, c^2 G / (n - 1))) / n``: where the squared weighted residuals of this
        sample fall short of their conditional expectation (a log that happens to hold few
        heavily weighted purchases), the expectation is used. Never below :attr:`se`; equal to
        it when no ``sigma^2_i`` exceeds its squared residual.
        """
        col = ESTIMATORS[self.estimator].residual_column
        if col is None or self.variance_gap is None:
            return math.nan
        return self._delta_se(col)

    def interval_method(self, ci: str) -> str:
        """:func:`interval_method` for this summary.

        ``"floor"`` becomes ``"analytic"`` without reward variances (no :attr:`variance_gap`).
        """
        method = interval_method(self.estimator, ci)
        return "analytic" if method == "floor" and self.variance_gap is None else method

    @property
    def skewness(self) -> float:
        """Skewness of the linearised per-row terms ``grad g . (T_i - mean)`` (NaN if unknown).

        The estimate's own skewness is about this divided by ``sqrt(n)``.
        """
        if self.comoment3 is None or (grad := self._gradient()) is None:
            return math.nan
        m2 = float(grad @ self.comoment @ grad) / self.n
        m3 = float(np.einsum("jkl,j,k,l->", self.comoment3, grad, grad, grad)) / self.n
        return m3 / m2**1.5 if m2 > 0 else math.nan

    def row(self, confidence: float, ci: str) -> dict[str, float]:
        """One table row: estimate, interval, standard error and diagnostics."""
        value = self.value
        ci = self.interval_method(ci)
        if ci == "none":
            se = low = high = math.nan
        elif ci in ("analytic", "floor"):
            se = self.se if ci == "analytic" else self.floor_se
            half = normal_quantile(confidence) * se
            low, high = value - half, value + half
        elif ci == "skew":
            if self.comoment3 is None:
                raise ValueError("ci == 'skew' but the summary holds no third co-moment")
            se = self.se
            low, high = skew_corrected_interval(
                value, se * math.sqrt(self.n), self.skewness, self.n, confidence
            )
        else:
            boot = self.bootstrap
            if boot is None:
                raise ValueError("ci == 'bootstrap' but the summary holds no bootstrap sums")
            with np.errstate(divide="ignore", invalid="ignore"):
                means = boot[0] / boot[1][:, None]
            reps = np.asarray(ESTIMATORS[self.estimator].value(means), dtype=float)
            finite = reps[np.isfinite(reps)]
            if finite.size < reps.size:
                logger.warning(
                    "%s: %d bootstrap replicates were not finite",
                    self.estimator,
                    reps.size - finite.size,
                )
            se = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
            low, high = percentile_interval(reps, confidence)
        ess = (self.weight_sum**2 / self.weight_sq_sum) if self.weight_sq_sum > 0 else math.nan
        return {
            "value": value,
            "ci_low": low,
            "ci_high": high,
            "se": se,
            "n": self.n,
            "ess": ess,
            "max_weight": self.weight_max,
            "mean_weight": self.weight_sum / self.n,
            "zero_target_share": self.zero_target / self.n,
        }


def weight_stats(weights: np.ndarray) -> tuple[float, float, float]:
    """Sum, sum of squares and maximum of importance weights (for ESS and max weight)."""
    return float(weights.sum()), float(weights @ weights), float(weights.max())


class Summaries(Mapping[str, Summary]):
    """Summaries of several estimators over the same rows (estimator name -> Summary)."""

    def __init__(self, items: Mapping[str, Summary]):
        self._items = dict(items)

    def __getitem__(self, name: str) -> Summary:
        """The summary of estimator ``name``."""
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        """The estimator names, in table order."""
        return iter(self._items)

    def __len__(self) -> int:
        """The number of estimators."""
        return len(self._items)

    def __repr__(self) -> str:
        n = next(iter(self._items.values())).n if self._items else 0
        return f"Summaries(estimators={list(self._items)}, n={n})"

    def __add__(self, other: Summaries) -> Summaries:
        """Merge estimator by estimator (both must hold the same estimators)."""
        if not isinstance(other, Summaries):
            return NotImplemented
        if list(self) != list(other):
            raise ValueError(f"cannot merge summaries of estimators {list(self)} and {list(other)}")
        return Summaries({k: self[k] + other[k] for k in self})


@overload
def merge(summaries: Iterable[Summary]) -> Summary: ...
@overload
def merge(summaries: Iterable[Summaries]) -> Summaries: ...
def merge(summaries: Iterable[Summary] | Iterable[Summaries]) -> Summary | Summaries:
    """Merge summaries of disjoint chunks of rows (equivalent to ``a + b + ...``)."""
    items: list[Summary | Summaries] = list(summaries)
    if not items:
        raise ValueError("summaries is empty, need at least one to merge")
    return reduce(operator.add, items)


def finalize(
    summary: Summary | Summaries, confidence: float = 0.95, ci: str = DEFAULT_CI
) -> pd.DataFrame:
    """Turn (merged) summaries into the result table, indexed by estimator.

    ``ci`` is one of :data:`CI_METHODS`; ``attrs["ci_methods"]`` says which interval each row
    got (``"auto"`` and ``"floor"`` resolved by :meth:`Summary.interval_method`). With
    ``"floor"`` (and ``"auto"`` for DR and SNDR) the ``se`` column is the floored one.

    Columns: ``value, ci_low, ci_high, se`` and the diagnostics ``n, ess`` (effective sample
    size ``(sum w)^2 / sum w^2`` of the importance weights the estimator uses), ``max_weight``,
    ``mean_weight`` (near 1 when propensities are right) and ``zero_target_share`` (share of rows
    whose logged action has zero target probability). Weight columns are NaN for ``dm`` and
    ``on-policy``, which use no weights.
    """
    confidence = check_confidence(confidence)
    check_choice(ci, "ci", CI_METHODS)
    items = {summary.estimator: summary} if isinstance(summary, Summary) else dict(summary)
    rows = {name: s.row(confidence, ci) for name, s in items.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    table.index.name = "estimator"
    table["n"] = table["n"].astype(np.int64)
    table.attrs.update(
        confidence=confidence,
        ci=ci,
        ci_methods={name: s.interval_method(ci) for name, s in items.items()},
    )
    return table
