"""Reward-model predictions for DM/DR by K-fold cross-fitting.

For each fold, one model per action is fitted on the rows of the *other* folds where that
action was logged, and predicts every action for the rows of the fold. A row's predictions
therefore never depend on its own reward. Actions with too few training rows (or a single
observed class for logistic regression) fall back to their mean training reward, then to the
overall training mean.
"""

from __future__ import annotations

import logging

import numpy as np

from engine.validation import check_integer

logger = logging.getLogger(__name__)

MODELS = ("auto", "ridge", "logistic")
MIN_ROWS = 5
"""Fewest training rows of an action for which a model is fitted."""


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


def fold_ids(n: int, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Random balanced fold labels in ``[0, n_folds)`` for ``n`` rows."""
    folds = np.empty(n, dtype=np.int64)
    folds[rng.permutation(n)] = np.arange(n) % n_folds
    return folds


def cross_fit_rewards(
    contexts: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    n_actions: int,
    rng: np.random.Generator,
    n_folds: int = 2,
    model: str = "auto",
) -> np.ndarray:
    """Out-of-fold predictions ``(n, n_actions)`` of the expected reward of every action.

    ``model``: ``"ridge"``, ``"logistic"`` (rewards must be 0/1) or ``"auto"`` (logistic for
    0/1 rewards, ridge otherwise). ``n_folds=1`` fits on all rows and predicts in-sample (no
    cross-fitting). Deterministic for a given generator state.
    """
    n_folds = check_integer(n_folds, "n_folds", low=1)
    if model not in MODELS:
        raise ValueError(f"reward_model == {model!r}, must be one of {MODELS}")
    binary = _is_binary(rewards)
    kind = ("logistic" if binary else "ridge") if model == "auto" else model
    if kind == "logistic" and not binary:
        raise ValueError("reward_model == 'logistic' but rewards are not all 0 or 1")
    n = rewards.shape[0]
    if n_folds > 1 and n < 2 * n_folds:
        raise ValueError(f"n_folds == {n_folds} needs at least {2 * n_folds} rows, got {n}")
    folds = fold_ids(n, n_folds, rng)
    out = np.empty((n, n_actions))
    for k in range(n_folds):
        test = folds == k
        train = ~test if n_folds > 1 else test
        fallback = float(rewards[train].mean())
        for a in range(n_actions):
            rows = train & (actions == a)
            out[test, a] = _fit_predict(
                kind, contexts[rows], rewards[rows], contexts[test], fallback
            )
    logger.debug("cross-fitted %s reward models: %d folds x %d actions", kind, n_folds, n_actions)
    return out
