"""Public entry points: :func:`evaluate`, :func:`summarize` and :func:`evaluate_stream`."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from engine.ope.estimators import (
    DEFAULT_DROS_LAMBDA,
    DEFAULT_SWITCH_THRESHOLD,
    ESTIMATORS,
    EstimatorParams,
    RowTerms,
    resolve,
)
from engine.ope.intervals import bootstrap_sums
from engine.ope.merge import CI_METHODS, DEFAULT_CI, Summaries, Summary, finalize, weight_stats
from engine.ope.reward_model import cross_fit_reward_moments, cross_fit_rewards
from engine.ope.validation import ValidatedFeedback, make_rng, validate
from engine.validation import check_choice, check_confidence, check_integer

logger = logging.getLogger(__name__)

CHUNK_KEYS = ("rewards", "actions", "logged_probs", "target_probs")
OPTIONAL_CHUNK_KEYS = ("estimated_rewards", "contexts", "estimated_variances")


def _check_ci(confidence: float, ci: str, n_bootstrap: int) -> tuple[float, int]:
    """Validated confidence and the number of bootstrap replicates to collect (0: analytic)."""
    confidence = check_confidence(confidence)
    check_choice(ci, "ci", CI_METHODS)
    return confidence, check_integer(n_bootstrap, "n_bootstrap", low=1) if ci == "bootstrap" else 0


def _summarize_data(
    data: ValidatedFeedback,
    names: tuple[str, ...],
    params: EstimatorParams,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> Summaries:
    """The :class:`Summaries` of the estimators ``names`` on validated rows."""
    terms = RowTerms.from_data(data)
    zero_target = int(np.count_nonzero(terms.target_logged == 0.0))
    blocks: list[np.ndarray] = []
    weights: list[tuple[float, float, float] | None] = []
    gaps: list[float | None] = []
    # ipw, snipw, dr and sndr share one weight array: summarise it once. Entries keep the
    # array alive so that an id is never reused by a later temporary.
    stats_by_id: dict[int, tuple[np.ndarray, tuple[float, float, float]]] = {}
    for name in names:
        est = ESTIMATORS[name]
        blocks.append(np.stack(est.columns(terms, params)).astype(np.float64, copy=False))
        if est.weights is None:
            weights.append(None)
            gaps.append(None)
            continue
        w = est.weights(terms, params)
        gaps.append(None if est.residual_column is None else terms.variance_gap(w))
        if id(w) not in stats_by_id:
            stats_by_id[id(w)] = (w, weight_stats(w))
        weights.append(stats_by_id[id(w)][1])
    boots: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(names)
    if n_bootstrap:
        # One set of resampling counts for all estimators: a single blocked product.
        sums, counts = bootstrap_sums(np.vstack(blocks).T, n_bootstrap, rng)
        edges = np.cumsum([0] + [b.shape[0] for b in blocks])
        boots = [(sums[:, lo:hi], counts) for lo, hi in itertools.pairwise(edges)]
    out = {}
    for name, block, w_stats, boot, gap in zip(names, blocks, weights, boots, gaps, strict=True):
        est = ESTIMATORS[name]
        p = (
            ()
            if est.parameter is None
            else ((est.parameter, float(getattr(params, est.parameter))),)
        )
        out[name] = Summary.from_terms(
            name, p, data.n_actions, block, w_stats, zero_target, boot, gap
        )
    return Summaries(out)


def summarize(
    rewards: object,
    actions: object,
    logged_probs: object,
    target_probs: object,
    estimated_rewards: object | None = None,
    contexts: object | None = None,
    estimators: Sequence[str] | None = None,
    *,
    n_bootstrap: int = 0,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    switch_threshold: float = DEFAULT_SWITCH_THRESHOLD,
    dros_lambda: float = DEFAULT_DROS_LAMBDA,
    n_folds: int = 2,
    reward_model: str = "auto",
    reward_scale: ArrayLike | None = None,
    estimated_variances: object | None = None,
) -> Summaries:
    """Mergeable sufficient statistics of each estimator over one chunk of rows.

    Arguments are those of :func:`evaluate`; ``n_bootstrap > 0`` also stores Poisson-bootstrap
    sums (so that ``finalize(..., ci="bootstrap")`` works on merged chunks). With
    ``contexts=``, the reward model (mean and variance) is cross-fitted *within this chunk*.

    >>> a = summarize([1.0, 0.0], [0, 1], [0.5, 0.5], [[1.0, 0.0], [1.0, 0.0]], estimators=["ipw"])
    >>> b = summarize([1.0], [0], [0.5], [[1.0, 0.0]], estimators=["ipw"])
    >>> round((a + b)["ipw"].value, 6)  # mean of (2, 0, 2)
    1.333333
    """
    data = validate(
        rewards,
        actions,
        logged_probs,
        target_probs,
        estimated_rewards,
        contexts,
        estimated_variances,
    )
    if data.estimated_rewards is not None and data.contexts is not None:
        raise ValueError("estimated_rewards and contexts both given, pass only one")
    params = EstimatorParams(switch_threshold, dros_lambda)
    names = resolve(estimators, data.estimated_rewards is not None or data.contexts is not None)
    if n_bootstrap != 0:
        n_bootstrap = check_integer(n_bootstrap, "n_bootstrap", low=1)
    need_model = any(ESTIMATORS[n].needs_model for n in names)
    generator = make_rng(rng, seed)
    if need_model and data.estimated_rewards is None:
        if data.contexts is None:  # resolve() already refused model estimators without a model
            raise ValueError("estimators need a reward model: pass estimated_rewards or contexts")
        fit_args = (
            data.contexts,
            data.actions,
            data.rewards,
            data.n_actions,
            generator,
            n_folds,
            reward_model,
            reward_scale,
        )
        v = None
        if any(ESTIMATORS[n].residual_column is not None for n in names):
            q, v = cross_fit_reward_moments(*fit_args)  # the variances feed ci="floor"
        else:
            q = cross_fit_rewards(*fit_args)
        data = ValidatedFeedback(
            data.rewards, data.actions, data.logged_probs, data.target_probs, q, None, v
        )
    return _summarize_data(data, names, params, n_bootstrap, generator)


def evaluate(
    rewards: object,
    actions: object,
    logged_probs: object,
    target_probs: object,
    estimated_rewards: object | None = None,
    contexts: object | None = None,
    estimators: Sequence[str] | None = None,
    confidence: float = 0.95,
    *,
    ci: str = DEFAULT_CI,
    n_bootstrap: int = 1000,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    switch_threshold: float = DEFAULT_SWITCH_THRESHOLD,
    dros_lambda: float = DEFAULT_DROS_LAMBDA,
    n_folds: int = 2,
    reward_model: str = "auto",
    reward_scale: ArrayLike | None = None,
    estimated_variances: object | None = None,
) -> pd.DataFrame:
    """Estimate the value of a target policy from logged bandit feedback.

    Args:
        rewards: ``(n,)`` observed rewards.
        actions: ``(n,)`` logged actions, integers in ``[0, n_actions)``.
        logged_probs: ``(n,)`` logging propensity of each logged action, in ``(0, 1]``.
        target_probs: ``(n, n_actions)`` the evaluated policy's distribution for each row.
        estimated_rewards: ``(n, n_actions)`` reward-model predictions for DM/DR-type estimators.
        contexts: ``(n, d)`` features; the reward model is then fitted by ``n_folds``-fold
            cross-fitting (``reward_model``: ``auto`` (ridge, or logistic for 0/1 rewards),
            ``ridge``, ``logistic`` or ``boosted``, see :mod:`engine.ope.reward_model`), with
            the reward's conditional variance for the ``"floor"`` interval.
        estimated_variances: ``(n, n_actions)`` the reward model's conditional variance of each
            action's reward (with ``estimated_rewards``; e.g. from
            :func:`engine.ope.reward_model.cross_fit_reward_moments`). Without it (and without
            ``contexts``) the ``"floor"`` interval falls back to the normal one.
        reward_scale: ``(n,)`` positive per-row reward scale for the reward model (it fits
            ``reward / scale``), e.g. the cart value when rewards are profits.
        estimators: names among ``ipw, snipw, dm, dr, sndr, switch-dr, dr-os, on-policy``.
            Default: ``ipw, snipw, dm, dr, sndr, switch-dr``, keeping only ``ipw, snipw`` when
            there is no reward model. ``on-policy`` (mean logged reward) is always added.
        confidence: level of the two-sided intervals.
        ci: ``"auto"`` (default: ``"skew"`` for IPW and SNIPW, ``"floor"`` for DR and SNDR,
            ``"analytic"`` for the others, see :func:`engine.ope.merge.interval_method`),
            ``"analytic"`` (normal, delta method for the self-normalised estimators),
            ``"bootstrap"`` (percentile interval of ``n_bootstrap`` Poisson-bootstrap
            replicates), ``"skew"`` (Hall's skewness-corrected interval from the terms' first
            three moments) or ``"floor"`` (normal, with a variance that never counts the
            squared weighted residuals below their conditional expectation, see
            :meth:`engine.ope.merge.Summary.floor_se`; doubly robust estimators with reward
            variances only, normal for the others). Measured coverage and the reasons for the
            default: docs/ope-engine-logs.md.
        n_bootstrap: replicates of the bootstrap interval (``ci="bootstrap"`` only).
        rng: randomness for the bootstrap and the cross-fitting folds (or give ``seed``).
        seed: seed of a fresh generator used instead of ``rng`` (one of them at most).
        switch_threshold: Switch-DR ``tau``.
        dros_lambda: DR-OS ``lambda``.
        n_folds: folds of the reward model's cross-fitting (with ``contexts``).
        reward_model: the reward model fitted on ``contexts`` (see ``contexts``).

    Returns:
        DataFrame indexed by estimator with ``value, ci_low, ci_high, se`` and diagnostics
        ``n, ess, max_weight, mean_weight, zero_target_share`` (see :func:`finalize`).

    >>> t = evaluate([1.0, 0.0, 1.0, 1.0], [0, 1, 0, 1], [0.5] * 4, [[1.0, 0.0]] * 4)
    >>> list(t.index), float(t.loc["ipw", "value"])
    (['ipw', 'snipw', 'on-policy'], 1.0)
    """
    confidence, n_boot = _check_ci(confidence, ci, n_bootstrap)
    summaries = summarize(
        rewards,
        actions,
        logged_probs,
        target_probs,
        estimated_rewards,
        contexts,
        estimators,
        n_bootstrap=n_boot,
        rng=rng,
        seed=seed,
        switch_threshold=switch_threshold,
        dros_lambda=dros_lambda,
        n_folds=n_folds,
        reward_model=reward_model,
        reward_scale=reward_scale,
        estimated_variances=estimated_variances,
    )
    return finalize(summaries, confidence, ci)


def evaluate_stream(
    chunks: Iterable[Mapping[str, Any]],
    estimators: Sequence[str] | None = None,
    confidence: float = 0.95,
    *,
    ci: str = DEFAULT_CI,
    n_bootstrap: int = 1000,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Evaluate chunk by chunk, keeping only the mergeable summaries in memory.

    Each chunk is a mapping with the keys ``rewards, actions, logged_probs, target_probs`` and
    optionally ``estimated_rewards`` (with ``estimated_variances``) or ``contexts``
    (cross-fitted within the chunk). ``params`` are passed to :func:`summarize`
    (``switch_threshold``, ``dros_lambda``, ``n_folds``, ``reward_model``). Analytic, skew,
    floor and auto results equal those of :func:`evaluate` on the concatenated rows (to
    rounding: the floor's variance gap is a plain sum); bootstrap ones are statistically
    equivalent but not identical.
    """
    confidence, n_boot = _check_ci(confidence, ci, n_bootstrap)
    generator = make_rng(rng, seed)
    total: Summaries | None = None
    i = -1
    for chunk in chunks:  # no enumerate(): its cached result tuple would pin the last chunk
        i += 1
        if not isinstance(chunk, Mapping):
            raise ValueError(f"chunk {i} is a {type(chunk).__name__}, must be a mapping")
        missing = [k for k in CHUNK_KEYS if k not in chunk]
        unknown = [k for k in chunk if k not in CHUNK_KEYS + OPTIONAL_CHUNK_KEYS]
        if missing or unknown:
            raise ValueError(f"chunk {i} is missing {missing} / has unknown keys {unknown}")
        try:
            part = summarize(
                **chunk,
                estimators=estimators,
                n_bootstrap=n_boot,
                rng=generator,
                **params,
            )
        except ValueError as exc:
            raise ValueError(f"chunk {i}: {exc}") from None
        total = part if total is None else total + part
        del chunk, part  # let the chunk's arrays go before the next one is produced
    if total is None:
        raise ValueError("chunks is empty, need at least one chunk")
    return finalize(total, confidence, ci)
