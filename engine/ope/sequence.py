"""Off-policy evaluation of multi-touch (sequence) policies from logged trajectories.

Logs are arrays over ``n`` episodes and ``K`` touches: ``rewards`` (n, K), ``valid`` (n, K) (the
touch happened: the flow had not ended), ``logging`` (n, K) the logging probability of the action
taken, ``target`` (n, K, A) the target policy's probabilities at each logged touch, ``actions``
(n, K). Each estimator is the mean of one term per episode, so episodes are the i.i.d. units of
the intervals (:mod:`engine.ope.intervals`; :func:`evaluate_sequences`' ``ci``).

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
    skew_t_interval,
)
from engine.validation import check_choice, check_confidence, check_integer

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
    return _terms(rewards, valid, actions, logging, target, q_hat, gaps=False)[0]


def _terms(
    rewards: Any,
    valid: Any,
    actions: Any,
    logging: Any,
    target: Any,
    q_hat: np.ndarray | None,
    gaps: bool,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """:func:`episode_terms` and each estimator's :func:`variance_gap` (``{}`` without ``gaps``).

    Only the ``"floor"`` interval reads the gaps, so the others skip their computation.
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
    if not gaps:
        return {"pdis": pdis, "dr": dr}, {}
    # DR = vhat_1 + sum_k rho_{1:k} (r_k + vhat_{k+1} - qhat_k(a_k)): its per-touch residuals
    # are these temporal differences (vhat is 0 after the last touch); PDIS is DR with qhat = 0
    v_next = np.zeros_like(v_hat)
    v_next[:, :-1] = np.where(v[:, 1:], v_hat[:, 1:], 0.0)
    residuals = {"pdis": r, "dr": r + v_next - q_taken}
    gap = {name: variance_gap(e, v, a, rho, pi.shape[2]) for name, e in residuals.items()}
    return {"pdis": pdis, "dr": dr}, gap


def variance_gap(
    residuals: np.ndarray, valid: np.ndarray, actions: np.ndarray, rho: np.ndarray, n_actions: int
) -> float:
    """``sum_i sum_k rho_ik^2 (sigma^2_k(a_ik) - e_ik^2)`` over the valid touches.

    ``e`` are the per-touch residuals and ``sigma^2_k(a)`` their mean square over every logged
    episode that took ``a`` at touch ``k``, weighted or not: the residuals' expected square,
    pooled from many more episodes than the few a heavy weight falls on. Positive when the
    weighted episodes' squared residuals fall short of it (a sample with few purchases on
    them), the case where the sample variance is too small.
    """
    gap = 0.0
    for k in range(residuals.shape[1]):
        live = valid[:, k]
        if not live.any():
            continue
        e2, taken = residuals[live, k] ** 2, actions[live, k]
        counts = np.bincount(taken, minlength=n_actions)
        sigma2 = np.bincount(taken, weights=e2, minlength=n_actions) / np.maximum(counts, 1)
        gap += float(np.sum(rho[live, k] ** 2 * (sigma2[taken] - e2)))
    return gap


BOOTSTRAP_INTERVALS = ("percentile", "bootstrap-t")
"""Interval methods of :func:`evaluate_sequences` that resample (``n_boot``, ``seed``)."""

SEQUENCE_INTERVALS = ("floor", "skew-t", "hall", "normal", *BOOTSTRAP_INTERVALS)
"""Interval methods of :func:`evaluate_sequences`."""

DEFAULT_BOOTSTRAP = 1000
"""Resamples of the bootstrap intervals when ``n_boot`` is not given."""


def evaluate_sequences(
    rewards: Any,
    valid: Any,
    actions: Any,
    logging: Any,
    target: Any,
    q_hat: np.ndarray | None = None,
    confidence: float = 0.95,
    ci: str = "floor",
    n_boot: int | None = None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Estimates with intervals: ``{estimator: {"value", "se", "ci_low", "ci_high"}}``.

    ``ci`` picks the interval, from the episode terms (``se`` is their standard error):

    * ``"floor"`` (default): ``value +- z se_floor``, with the variance floor of
      :mod:`engine.ope`'s doubly robust intervals: ``se_floor^2 = (s^2 + max(0, gap / (n -
      1))) / n``, ``s^2`` the terms' sample variance and ``gap`` :func:`variance_gap` of the
      estimator's per-touch residuals (DR's temporal differences; PDIS's rewards, as DR with
      ``qhat = 0``). When the weighted episodes' squared residuals fall short of their pooled
      expectation, the expectation is used; ``se`` reports ``se_floor``;
    * ``"skew-t"``: Hall's skewness-corrected interval with a Student-t critical
      value of ``2 n / (kurtosis - 1)`` degrees of freedom
      (:func:`engine.ope.intervals.skew_t_interval`; ``kurtosis`` the terms' fourth
      standardised moment, 3 for normal terms, where this is the normal interval);
    * ``"hall"``: Hall's interval with the normal critical value
      (:func:`engine.ope.intervals.skew_corrected_interval`);
    * ``"normal"``: ``value +- z se``;
    * ``"percentile"`` and ``"bootstrap-t"``: Poisson bootstrap over episodes (``n_boot``
      resamples, default 1,000, from ``seed``): percentile intervals, or bootstrap-t
      ``[value - q_hi se, value - q_lo se]`` from the quantiles of ``(value* - value) / se*``.

    Importance weights make the episode terms skewed and heavy-tailed (a rare episode that
    follows the target to its last touch carries a large weight): a sample short of purchases
    on those episodes has both a low estimate and a small ``se``, so normal intervals fall short
    above. The floor puts back the variance such a sample lacks; Hall's correction reaches
    further up for the skew, the t quantile widens for the noise of ``se`` itself (coverage
    figures: docs/benchmarks.md).
    """
    confidence = check_confidence(confidence)
    ci = check_choice(ci, "ci", SEQUENCE_INTERVALS)
    bootstrap = ci in BOOTSTRAP_INTERVALS
    if n_boot is not None and not bootstrap:
        raise ValueError(
            f"n_boot == {n_boot!r} with ci == {ci!r}: only ci='percentile' or "
            "'bootstrap-t' resample"
        )
    n_boot = check_integer(DEFAULT_BOOTSTRAP if n_boot is None else n_boot, "n_boot", low=1)
    terms, gaps = _terms(rewards, valid, actions, logging, target, q_hat, gaps=ci == "floor")
    n = len(next(iter(terms.values())))
    if n < 2:
        raise ValueError(f"rewards has {n} episodes, must have at least 2")
    z = normal_quantile(confidence)
    out: dict[str, dict[str, float]] = {}
    sums = counts = np.empty(0)
    if bootstrap:
        columns = [terms[name] for name in SEQUENCE_ESTIMATORS]
        columns += [t * t for t in columns]  # second moments, for the studentized replicates
        sums, counts = bootstrap_sums(np.column_stack(columns), n_boot, np.random.default_rng(seed))
    p = len(SEQUENCE_ESTIMATORS)
    for j, name in enumerate(SEQUENCE_ESTIMATORS):
        t = terms[name]
        value = float(t.mean())
        se = float(t.std(ddof=1) / math.sqrt(n))
        if ci == "floor":
            if gaps[name] > 0.0:
                se = math.sqrt((float(t.var(ddof=1)) + gaps[name] / (n - 1)) / n)
            low, high = value - z * se, value + z * se
        elif ci in ("skew-t", "hall"):
            skewness, kurtosis = _shape(t, value)
            if ci == "hall":
                low, high = skew_corrected_interval(
                    value, se * math.sqrt(n), skewness, n, confidence
                )
            else:
                low, high = skew_t_interval(
                    value, se * math.sqrt(n), skewness, kurtosis, n, confidence
                )
        elif ci == "normal":
            low, high = value - z * se, value + z * se
        elif ci == "percentile":
            low, high = percentile_interval(sums[:, j] / np.maximum(counts, 1), confidence)
        else:
            low, high = _studentized(sums[:, j], sums[:, p + j], counts, value, se, confidence)
        out[name] = {"value": value, "se": se, "ci_low": low, "ci_high": high}
    return out


def _shape(t: np.ndarray, mean: float) -> tuple[float, float]:
    """Skewness and (plain, not excess) kurtosis of the terms; ``(0, 3)`` if they are constant."""
    d = t - mean
    m2 = float(np.mean(d * d))
    if m2 <= 0.0:
        return 0.0, 3.0
    d3 = d * d * d
    return float(np.mean(d3)) / m2**1.5, float(np.mean(d3 * d)) / m2**2


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
