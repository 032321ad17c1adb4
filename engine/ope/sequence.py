"""Off-policy evaluation of multi-touch (sequence) policies from logged trajectories.

Logs are arrays over ``n`` episodes and ``K`` touches: ``rewards`` (n, K), ``valid`` (n, K) (the
touch happened: the flow had not ended), ``logging`` (n, K) the logging probability of the action
taken, ``target`` (n, K, A) the target policy's probabilities at each logged touch, ``actions``
(n, K). Each estimator is the mean of one term per episode, so episodes are the i.i.d. units of
the normal and bootstrap intervals (:mod:`engine.ope.intervals`).

* per-decision importance sampling (Precup et al. 2000):
  ``sum_k rho_{1:k} r_k`` with ``rho_{1:k} = prod_{j<=k} pi(a_j|s_j) / mu_j``;
* doubly robust (Jiang & Li 2016, Thomas & Brunskill 2016):
  ``sum_k [rho_{1:k} (r_k - qhat_k(a_k)) + rho_{1:k-1} vhat_k]`` with
  ``vhat_k = sum_a pi(a|s_k) qhat_k(a)``; :func:`fitted_q_by_touch` gives a simple ``qhat``.

>>> import numpy as np
>>> r = np.array([[1.0, 0.0], [0.0, 2.0]]); valid = np.array([[True, False], [True, True]])
>>> mu = np.full((2, 2), 0.5); a = np.zeros((2, 2), dtype=int)
>>> pi = np.zeros((2, 2, 2)); pi[..., 0] = 1.0
>>> round(evaluate_sequences(r, valid, a, mu, pi)["pdis"]["value"], 6)  # (2*1 + 4*2) / 2
5.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.ope.intervals import (
    bootstrap_sums,
    normal_quantile,
    percentile_interval,
    skew_corrected_interval,
)
from engine.validation import check_confidence, check_integer

SEQUENCE_ESTIMATORS = ("pdis", "dr")


def _check(
    rewards: Any, valid: Any, actions: Any, logging: Any, target: Any
) -> tuple[np.ndarray, ...]:
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"rewards has shape {r.shape}, must be (n_episodes, n_touches)")
    v = np.asarray(valid, dtype=bool)
    a = np.asarray(actions)
    mu = np.asarray(logging, dtype=np.float64)
    pi = np.asarray(target, dtype=np.float64)
    for name, arr in (("valid", v), ("actions", a), ("logging", mu)):
        if arr.shape != r.shape:
            raise ValueError(f"{name} has shape {arr.shape}, must be {r.shape} like rewards")
    if pi.ndim != 3 or pi.shape[:2] != r.shape:
        raise ValueError(
            f"target has shape {pi.shape}, must be ({r.shape[0]}, {r.shape[1]}, n_actions)"
        )
    if not np.all(np.isfinite(r[v])):
        raise ValueError("rewards has a non-finite entry on a valid touch")
    bad = v & ~((mu > 0) & (mu <= 1))
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(f"logging[{i}, {k}] == {mu[i, k]!r}, must be in (0, 1] on a valid touch")
    if v.any() and (a[v].min() < 0 or a[v].max() >= pi.shape[2]):
        raise ValueError(f"actions must be in [0, {pi.shape[2]}) on valid touches")
    return r, v, a.astype(np.int64), mu, pi


def _ratios(v: np.ndarray, a: np.ndarray, mu: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Cumulative importance ratios ``rho_{1:k}`` (1 beyond the end of an episode)."""
    taken = np.take_along_axis(pi, np.maximum(a, 0)[:, :, None], axis=2)[:, :, 0]
    step = np.where(v, taken / np.where(v, mu, 1.0), 1.0)
    return np.cumprod(step, axis=1)


def fitted_q_by_touch(rewards: Any, valid: Any, actions: Any, target: Any) -> np.ndarray:
    """``qhat`` (K, A) by touch and action, ignoring the rest of the state.

    Per touch and action, the mean logged reward plus the next touch's ``vhat`` under the
    target (backwards). Unseen pairs get the touch's mean. A crude model: DR stays unbiased
    with any ``qhat``; a better one narrows it.
    """
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(valid, dtype=bool)
    a = np.asarray(actions, dtype=np.int64)
    pi = np.asarray(target, dtype=np.float64)
    n, K = r.shape
    A = pi.shape[2]
    q = np.zeros((K, A))
    v_next = np.zeros(n)  # vhat of each episode's next touch (0 when it ended)
    for k in reversed(range(K)):
        live = v[:, k]
        y = r[:, k] + v_next
        if live.any():
            sums = np.bincount(a[live, k], weights=y[live], minlength=A)
            counts = np.bincount(a[live, k], minlength=A)
            q[k] = np.where(counts > 0, sums / np.maximum(counts, 1), y[live].mean())
        v_next = np.where(live, pi[:, k] @ q[k], 0.0)
    return q


def episode_terms(
    rewards: Any,
    valid: Any,
    actions: Any,
    logging: Any,
    target: Any,
    q_hat: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-episode terms ``(n,)`` of each estimator (their means are the estimates).

    ``q_hat``: (K, A) per-touch model or (n, K, A) per logged touch; default
    :func:`fitted_q_by_touch`.
    """
    r, v, a, mu, pi = _check(rewards, valid, actions, logging, target)
    n, K = r.shape
    rho = _ratios(v, a, mu, pi)
    rho_prev = np.concatenate([np.ones((n, 1)), rho[:, :-1]], axis=1)
    pdis = np.where(v, rho * r, 0.0).sum(axis=1)
    q = fitted_q_by_touch(r, v, a, pi) if q_hat is None else np.asarray(q_hat, dtype=np.float64)
    if q.shape == (K, pi.shape[2]):
        q = np.broadcast_to(q[None], pi.shape)
    if q.shape != pi.shape:
        raise ValueError(f"q_hat has shape {q.shape}, must be ({K}, n_actions) or {pi.shape}")
    q_taken = np.take_along_axis(q, a[:, :, None], axis=2)[:, :, 0]
    v_hat = (pi * q).sum(axis=2)
    dr = np.where(v, rho * (r - q_taken) + rho_prev * v_hat, 0.0).sum(axis=1)
    return {"pdis": pdis, "dr": dr}


def evaluate_sequences(
    rewards: Any,
    valid: Any,
    actions: Any,
    logging: Any,
    target: Any,
    q_hat: np.ndarray | None = None,
    confidence: float = 0.95,
    n_boot: int = 0,
    seed: int = 0,
    studentized: bool = False,
    skew: bool = False,
) -> dict[str, dict[str, float]]:
    """Estimates with intervals: ``{estimator: {"value", "se", "ci_low", "ci_high"}}``.

    Intervals are normal (``value +- z se`` over episodes), with ``skew`` Hall's
    skewness-corrected interval (:func:`engine.ope.intervals.skew_corrected_interval`, from the
    skewness of the episode terms), or with ``n_boot > 0`` Poisson bootstrap intervals over
    episodes: percentile intervals, or with ``studentized`` bootstrap-t intervals
    ``[value - q_hi se, value - q_lo se]`` from the quantiles of ``(value* - value) / se*``.
    Importance weights make the episode terms very skewed (a rare episode that follows the
    target to its last touch carries a large weight): a sample that lacks those episodes has
    both a low estimate and a small ``se``, so normal intervals fall short above; the skew
    and bootstrap-t intervals reach further up (coverage figures: docs/benchmarks.md).
    """
    confidence = check_confidence(confidence)
    n_boot = check_integer(n_boot, "n_boot", low=0)
    if not isinstance(studentized, bool):
        raise ValueError(f"studentized == {studentized!r}, must be a bool")
    if not isinstance(skew, bool):
        raise ValueError(f"skew == {skew!r}, must be a bool")
    if skew and n_boot:
        raise ValueError(f"skew == True with n_boot == {n_boot}: choose one interval")
    terms = episode_terms(rewards, valid, actions, logging, target, q_hat)
    n = len(next(iter(terms.values())))
    if n < 2:
        raise ValueError(f"rewards has {n} episodes, must have at least 2")
    z = normal_quantile(confidence)
    out: dict[str, dict[str, float]] = {}
    sums = counts = None
    if n_boot:
        columns = [terms[name] for name in SEQUENCE_ESTIMATORS]
        columns += [t * t for t in columns]  # second moments, for the studentized replicates
        sums, counts = bootstrap_sums(np.column_stack(columns), n_boot, np.random.default_rng(seed))
    p = len(SEQUENCE_ESTIMATORS)
    for j, name in enumerate(SEQUENCE_ESTIMATORS):
        t = terms[name]
        value = float(t.mean())
        se = float(t.std(ddof=1) / math.sqrt(n))
        if skew:
            sd = float(t.std())
            skewness = float(np.mean((t - value) ** 3) / sd**3) if sd > 0 else 0.0
            low, high = skew_corrected_interval(value, se * math.sqrt(n), skewness, n, confidence)
        elif sums is None or counts is None:
            low, high = value - z * se, value + z * se
        elif not studentized:
            low, high = percentile_interval(sums[:, j] / np.maximum(counts, 1), confidence)
        else:
            low, high = _studentized(sums[:, j], sums[:, p + j], counts, value, se, confidence)
        out[name] = {"value": value, "se": se, "ci_low": low, "ci_high": high}
    return out


def _studentized(
    sums: np.ndarray,
    squares: np.ndarray,
    counts: np.ndarray,
    value: float,
    se: float,
    confidence: float,
) -> tuple[float, float]:
    """Bootstrap-t interval from replicate sums, sums of squares and counts."""
    ok = counts > 1
    c = counts[ok]
    mean = sums[ok] / c
    var = np.maximum(squares[ok] / c - mean * mean, 0.0) * c / (c - 1.0)
    se_star = np.sqrt(var / c)
    good = se_star > 0
    if not good.any() or se == 0:
        return value, value
    lo_q, hi_q = percentile_interval((mean[good] - value) / se_star[good], confidence)
    return value - hi_q * se, value - lo_q * se
