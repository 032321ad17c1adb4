"""Per-batch sufficient statistics of a lake evaluation, merged the same way by every backend.

A :class:`Plan` (picklable: Spark ships it to the executors) says what to compute: actions,
features, strata, estimators, the target and the fitted reward model. :func:`batch_stats` turns
one Arrow batch into :class:`LakeStats` (per stratum: the estimators'
:class:`~engine.ope.merge.Summaries` and an importance-weight histogram); ``+`` merges them and
:func:`table` finalises one row per stratum and estimator plus the total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from engine.ope.api import summarize
from engine.ope.estimators import DEFAULT_DROS_LAMBDA, DEFAULT_SWITCH_THRESHOLD
from engine.ope.lake.batch import LogBatch, read_batch, read_reward_batch
from engine.ope.lake.reward import RewardModel, RewardStats, regressors
from engine.ope.lake.target import TargetSpec
from engine.ope.merge import DEFAULT_CI, Summaries, finalize

TOTAL = "(all)"
"""Stratum label of the total rows."""
QUANTILES = (0.5, 0.9, 0.99)
"""Importance-weight quantiles reported per stratum (columns ``w_p50``, ``w_p90``, ``w_p99``)."""
BINS_PER_DECADE = 100
LOG10_RANGE = (-6, 6)
_EDGES = np.logspace(
    LOG10_RANGE[0], LOG10_RANGE[1], (LOG10_RANGE[1] - LOG10_RANGE[0]) * BINS_PER_DECADE + 1
)


def weight_histogram(weights: np.ndarray) -> np.ndarray:
    """Counts of zero weights, then of positive weights in log-spaced bins (under/overflow last).

    Integer counts merge exactly, so quantiles agree bit for bit across backends; a quantile is
    reported as the upper edge of its bin (2.3% resolution with 100 bins per decade).
    """
    counts = np.zeros(_EDGES.size + 2, dtype=np.int64)
    counts[0] = int(np.count_nonzero(weights == 0.0))
    positive = weights[weights > 0.0]
    idx = np.searchsorted(_EDGES, positive, side="left")  # 0: below 1e-6, len: above 1e6
    counts[1:] += np.bincount(idx, minlength=_EDGES.size + 1)
    return counts


def histogram_quantile(counts: np.ndarray, q: float) -> float:
    """Quantile ``q`` of the weights a :func:`weight_histogram` counted (bin upper edge)."""
    total = int(counts.sum())
    if total == 0:
        return math.nan
    rank = q * total
    cum = np.cumsum(counts)
    pos = int(np.searchsorted(cum, rank, side="left"))
    if pos == 0:
        return 0.0
    k = pos - 1  # index into searchsorted bins
    return float(_EDGES[k]) if k < _EDGES.size else math.inf


@dataclass(frozen=True)
class Plan:
    """What one evaluation computes; the same object on the driver and every executor."""

    action_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    by: tuple[str, ...]
    estimators: tuple[str, ...]
    target: TargetSpec
    n_folds: int = 2
    switch_threshold: float = DEFAULT_SWITCH_THRESHOLD
    dros_lambda: float = DEFAULT_DROS_LAMBDA
    needs_model: bool = False
    model: RewardModel | None = field(default=None, compare=False)

    def with_model(self, model: RewardModel) -> Plan:
        """This plan with the fitted reward model (pass 1 of DR) attached."""
        return replace(self, model=model)


@dataclass(eq=False)
class LakeStats:
    """Mergeable statistics: per stratum key, Summaries and a weight histogram; dropped rows."""

    strata: dict[tuple, tuple[Summaries, np.ndarray]] = field(default_factory=dict)
    n_fallback: int = 0
    n_no_reward: int = 0
    n_batches: int = 0

    def __add__(self, other: LakeStats) -> LakeStats:
        out = dict(self.strata)
        for key, (summ, hist) in other.strata.items():
            if key in out:
                mine = out[key]
                out[key] = (mine[0] + summ, mine[1] + hist)
            else:
                out[key] = (summ, hist)
        return LakeStats(
            out,
            self.n_fallback + other.n_fallback,
            self.n_no_reward + other.n_no_reward,
            self.n_batches + other.n_batches,
        )


def reward_batch_stats(batch, plan: Plan) -> RewardStats | None:
    """Pass 1 of DR: the reward-model moments of one batch (None when it keeps no row)."""
    rows = read_reward_batch(batch, plan.action_names, plan.feature_names)
    if rows.n == 0:
        return None
    return RewardStats.of(
        regressors(rows.features),
        rows.actions,
        rows.rewards,
        rows.timestamps,
        plan.n_folds,
        len(plan.action_names),
    )


def batch_stats(batch, plan: Plan) -> LakeStats:
    """Pass 2: the estimators' summaries and weight histograms of one batch, per stratum."""
    rows = read_batch(batch, plan.action_names, plan.feature_names, plan.by)
    out = LakeStats(n_fallback=rows.n_fallback, n_no_reward=rows.n_no_reward, n_batches=1)
    if rows.n == 0:
        return out
    target = plan.target.probabilities(rows, plan.action_names, plan.feature_names)
    q = None
    if plan.needs_model:
        if plan.model is None:
            raise ValueError("estimators need a reward model but the plan has none (fit it first)")
        q = plan.model.predict(regressors(rows.features), rows.timestamps)
    weights = target[np.arange(rows.n), rows.actions] / rows.logged_probs
    for code, key in enumerate(rows.keys):
        sel = rows.strata == code if len(rows.keys) > 1 else slice(None)
        summ = summarize(
            rows.rewards[sel],
            rows.actions[sel],
            rows.logged_probs[sel],
            target[sel],
            estimated_rewards=None if q is None else q[sel],
            estimators=plan.estimators,
            switch_threshold=plan.switch_threshold,
            dros_lambda=plan.dros_lambda,
        )
        out.strata[key] = (summ, weight_histogram(weights[sel]))
    return out


def _rows(summ: Summaries, hist: np.ndarray, confidence: float, ci: str) -> pd.DataFrame:
    t = finalize(summ, confidence, ci)
    for q in QUANTILES:
        t[f"w_p{round(q * 100)}"] = histogram_quantile(hist, q)
    return t


def table(
    stats: LakeStats, by: Sequence[str], confidence: float, ci: str = DEFAULT_CI
) -> pd.DataFrame:
    """One row per stratum and estimator, then the total (stratum values ``(all)``).

    Columns: those of :func:`engine.ope.finalize` (intervals of method ``ci``) plus the weight
    quantiles ``w_p50, w_p90, w_p99``. The index is ``(*by, "estimator")`` (just ``estimator``
    without strata).
    """
    if not stats.strata:
        raise ValueError(
            f"the log has no row to evaluate ({stats.n_fallback} fallback, "
            f"{stats.n_no_reward} without reward)"
        )
    keys = sorted(stats.strata, key=lambda k: tuple(str(v) for v in k))
    frames = []
    total_summ, total_hist = stats.strata[keys[0]]
    for k, key in enumerate(keys):
        summ, hist = stats.strata[key]
        if k:
            total_summ, total_hist = total_summ + summ, total_hist + hist
        if by:
            frames.append((key, _rows(summ, hist, confidence, ci)))
    frames.append(((TOTAL,) * len(by), _rows(total_summ, total_hist, confidence, ci)))
    parts = []
    for key, t in frames:
        t = t.reset_index()
        for i, (name, value) in enumerate(zip(by, key, strict=True)):
            t.insert(i, name, value)
        parts.append(t)
    out = pd.concat(parts, ignore_index=True).set_index([*by, "estimator"])
    out.attrs.update(
        confidence=confidence,
        ci=ci,
        ci_methods=frames[-1][1].attrs["ci_methods"],
        n_fallback=stats.n_fallback,
        n_no_reward=stats.n_no_reward,
        n_batches=stats.n_batches,
    )
    return out


def describe(stats: LakeStats) -> dict[str, Any]:
    """Row counts for logs and progress messages."""
    n = sum(next(iter(s.values())).n for s, _ in stats.strata.values()) if stats.strata else 0
    return {"n": n, "fallback": stats.n_fallback, "no_reward": stats.n_no_reward}


__all__ = ["LakeStats", "LogBatch", "Plan", "batch_stats", "reward_batch_stats", "table"]
