"""Reward-model predictions for DM/DR by K-fold cross-fitting.

For each fold, the model is fitted on the rows of the *other* folds and predicts every action
for the rows of the fold, so a row's predictions never depend on its own reward.

- ``ridge`` / ``logistic``: one linear model per action, fitted on the rows where that action
  was logged. Actions with too few training rows (or a single observed class for logistic
  regression) fall back to their mean training reward, then to the overall training mean.
- ``boosted``: one gradient-boosted tree ensemble (scikit-learn's
  ``HistGradientBoostingRegressor``, squared loss) on the contexts plus the action as a
  categorical feature. Pooling the actions lets rarely logged actions borrow the shape of the
  others; the trees fit interactions between the action and the context and nonlinear effects
  (purchase probabilities, thresholds) that a linear model misses.

``scale`` (optional, one positive number per row) makes the model fit ``reward / scale`` and
predict ``scale * prediction``: for rewards proportional to a known size (profit and cart value)
the model then learns a per-unit effect that is shared across sizes.

:func:`cross_fit_reward_moments` also fits the reward's conditional variance (the same model on
the squared reward, on the same folds), which the doubly robust estimators' ``"floor"`` interval
uses (:mod:`engine.ope.merge`).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike

from engine.validation import check_integer

logger = logging.getLogger(__name__)

MODELS = ("auto", "ridge", "logistic", "boosted")
MIN_ROWS = 5
"""Fewest training rows of an action for which a model is fitted."""
BOOSTED_PARAMS = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,
}
"""Settings of the ``boosted`` model: small trees, strong leaf minimum (rewards are noisy).
No early stopping, so that the fit is deterministic and uses every training row."""
SINGLE_THREAD_ROWS = 20_000
"""Below this many training rows the ``boosted`` model runs on one thread: on small fits the
OpenMP threads cost more than they save (and spin on a busy machine)."""


def _is_binary(rewards: np.ndarray) -> bool:
    return bool(np.all((rewards == 0.0) | (rewards == 1.0)))


def _fit_predict(
    kind: str, x: np.ndarray, y: np.ndarray, x_new: np.ndarray, fallback: float
) -> np.ndarray:
    # scikit-learn is imported here so that `from engine import ope` stays light.
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if y.size == 0:
        return np.full(x_new.shape[0], fallback)
    if y.size < MIN_ROWS or (kind == "logistic" and np.unique(y).size < 2):
        return np.full(x_new.shape[0], float(y.mean()))
    if kind == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
        model.fit(x, y.astype(int))
        return model.predict_proba(x_new)[:, 1]
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    model.fit(x, y)
    return model.predict(x_new)


def _boosted_fit_predict(
    x: np.ndarray, actions: np.ndarray, y: np.ndarray, x_new: np.ndarray, n_actions: int
) -> np.ndarray:
    from contextlib import nullcontext

    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    d = x.shape[1]
    if y.size < MIN_ROWS:
        return np.full((x_new.shape[0], n_actions), float(y.mean()) if y.size else 0.0)
    m = x_new.shape[0]
    grid = np.empty((m * n_actions, d + 1))
    grid[:, :d] = np.repeat(x_new, n_actions, axis=0)
    grid[:, d] = np.tile(np.arange(n_actions), m)
    small = y.size < SINGLE_THREAD_ROWS
    with threadpool_limits(limits=1, user_api="openmp") if small else nullcontext():
        model = HistGradientBoostingRegressor(categorical_features=[d], **BOOSTED_PARAMS)
        model.fit(np.column_stack([x, actions]), y)
        return model.predict(grid).reshape(m, n_actions)


def fold_ids(n: int, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Random balanced fold labels in ``[0, n_folds)`` for ``n`` rows."""
    folds = np.empty(n, dtype=np.int64)
    folds[rng.permutation(n)] = np.arange(n) % n_folds
    return folds


def _cross_fit(
    contexts: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    n_actions: int,
    rng: np.random.Generator,
    n_folds: int,
    model: str,
    scale: ArrayLike | None,
    variances: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Out-of-fold means and (with ``variances``) conditional variances, on the reward scale."""
    n_folds = check_integer(n_folds, "n_folds", low=1)
    if model not in MODELS:
        raise ValueError(f"reward_model == {model!r}, must be one of {MODELS}")
    binary = _is_binary(rewards)
    kind = ("logistic" if binary else "ridge") if model == "auto" else model
    if kind == "logistic" and not binary:
        raise ValueError("reward_model == 'logistic' but rewards are not all 0 or 1")
    n = rewards.shape[0]
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float64)
        if scale.shape != (n,) or not np.all(np.isfinite(scale) & (scale > 0)):
            raise ValueError(f"scale has shape {scale.shape}, must be ({n},) of finite numbers > 0")
        if kind == "logistic":
            raise ValueError("scale is not supported with reward_model == 'logistic'")
        rewards = rewards / scale
    if n_folds > 1 and n < 2 * n_folds:
        raise ValueError(f"n_folds == {n_folds} needs at least {2 * n_folds} rows, got {n}")
    folds = fold_ids(n, n_folds, rng)
    # Logistic: the variance of a 0/1 reward is q (1 - q), no second model needed.
    second = variances and kind != "logistic"
    targets = [rewards, rewards**2] if second else [rewards]
    outs = [np.empty((n, n_actions)) for _ in targets]
    for k in range(n_folds):
        test = folds == k
        train = ~test if n_folds > 1 else test
        for y, out in zip(targets, outs, strict=True):
            if kind == "boosted":
                out[test] = _boosted_fit_predict(
                    contexts[train], actions[train], y[train], contexts[test], n_actions
                )
                continue
            fallback = float(y[train].mean())
            for a in range(n_actions):
                rows = train & (actions == a)
                out[test, a] = _fit_predict(kind, contexts[rows], y[rows], contexts[test], fallback)
    logger.debug("cross-fitted %s reward models: %d folds x %d actions", kind, n_folds, n_actions)
    mean = outs[0]
    var = None
    if variances:
        var = np.maximum(outs[1] - mean**2 if second else mean * (1.0 - mean), 0.0)
    if scale is not None:
        mean = mean * scale[:, None]
        var = None if var is None else var * (scale**2)[:, None]
    return mean, var


def cross_fit_rewards(
    contexts: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    n_actions: int,
    rng: np.random.Generator,
    n_folds: int = 2,
    model: str = "auto",
    scale: ArrayLike | None = None,
) -> np.ndarray:
    """Out-of-fold predictions ``(n, n_actions)`` of the expected reward of every action.

    ``model``: ``"ridge"``, ``"logistic"`` (rewards must be 0/1), ``"boosted"`` (pooled
    gradient-boosted trees, see the module docstring) or ``"auto"`` (logistic for 0/1 rewards,
    ridge otherwise). ``scale``: ``(n,)`` positive per-row reward scale (fit ``reward / scale``,
    predict times ``scale``); not with ``logistic``. ``n_folds=1`` fits on all rows and predicts
    in-sample (no cross-fitting). Deterministic for a given generator state.
    """
    mean, _ = _cross_fit(contexts, actions, rewards, n_actions, rng, n_folds, model, scale, False)
    return mean


def cross_fit_reward_moments(
    contexts: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    n_actions: int,
    rng: np.random.Generator,
    n_folds: int = 2,
    model: str = "auto",
    scale: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold conditional mean and variance ``(n, n_actions)`` of every action's reward.

    Arguments as :func:`cross_fit_rewards`, whose predictions the mean equals for the same
    generator state (same folds, same fits). The variance ``E[(r - q(x, a))^2 | x, a]`` is
    ``max(0, m2 - q^2)`` with ``m2`` the same kind of model fitted to the squared reward (per
    unit of ``scale``, times ``scale^2``), on the same folds; for ``logistic`` it is
    ``q (1 - q)``. It feeds the ``"floor"`` interval of the doubly robust estimators
    (:func:`engine.ope.merge.interval_method`).
    """
    mean, var = _cross_fit(contexts, actions, rewards, n_actions, rng, n_folds, model, scale, True)
    if var is None:  # unreachable: _cross_fit returns variances when asked
        raise RuntimeError("no variances were fitted")
    return mean, var
