"""LinUCB with disjoint per-action ridge models and epsilon-mixed propensities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.validation import check_bool, check_non_negative, check_positive, check_probability

from ._ridge import RidgeLearnerMixin, RidgeStats
from .base import Learner

__all__ = ["LinUCBLearner", "epsilon_mix"]


def epsilon_mix(best: np.ndarray, eligible: np.ndarray, epsilon: float) -> np.ndarray:
    """``(1 - epsilon) * onehot(best) + epsilon / |eligible|`` on the eligible actions.

    Works for one row (``best`` scalar, ``eligible`` ``(A,)``) or many (``(n,)``, ``(n, A)``).

    >>> epsilon_mix(np.int64(1), np.array([True, True, False, True]), 0.3).round(2).tolist()
    [0.1, 0.8, 0.0, 0.1]
    """
    share = epsilon / eligible.sum(axis=-1, keepdims=True)
    onehot = np.asarray(best)[..., None] == np.arange(eligible.shape[-1])
    return eligible * share + (1.0 - epsilon) * onehot


class LinUCBLearner(RidgeLearnerMixin, Learner):
    """Disjoint LinUCB (Li et al., 2010) whose logged propensities are never 0.

    Each action ``a`` has a ridge model ``theta_a`` with covariance ``C_a``; its score is
    ``UCB_a(x) = theta_a . z + alpha * sqrt(z^T C_a z)`` with ``z = [x, 1]`` (intercept).
    The distribution is ``(1 - epsilon) * onehot(argmax UCB) + epsilon / |eligible|`` over the
    eligible actions, so every eligible action has probability >= ``epsilon / |eligible|``.
    The exploit action (:meth:`greedy`) maximises ``theta_a . z``. Features should be on
    comparable scales (the ridge penalty is shared).

    Parameters
    ----------
    alpha
        Width of the confidence bonus, in units of ``reward / reward_scale`` (>= 0).
    epsilon
        Uniform mixing weight in [0, 1].
    ridge
        Ridge penalty (prior precision) > 0.
    fit_intercept
        Append a constant feature.

    >>> learner = LinUCBLearner(["none", "coupon_5"], ["x"], alpha=0.0, epsilon=0.1)
    >>> for _ in range(20):
    ...     learner.update(np.array([1.0]), 1, 0.5, 2.0)
    >>> learner.probabilities(np.array([1.0]), np.array([True, True])).round(3).tolist()
    [0.05, 0.95]
    >>> learner.probabilities(np.array([1.0]), np.array([True, False])).tolist()
    [1.0, 0.0]
    """

    def __init__(
        self,
        action_names: Sequence[str],
        feature_names: Sequence[str],
        *,
        alpha: float = 1.0,
        epsilon: float = 0.05,
        ridge: float = 1.0,
        fit_intercept: bool = True,
        reward_scale: float = 10.0,
    ) -> None:
        super().__init__(action_names, feature_names, reward_scale=reward_scale)
        self.alpha = check_non_negative(alpha, "alpha")
        self.epsilon = check_probability(epsilon, "epsilon")
        self.ridge = check_positive(ridge, "ridge")
        fit_intercept = check_bool(fit_intercept, "fit_intercept")
        self.fit_intercept = fit_intercept
        self._stats = RidgeStats(self.n_actions, self.n_features + fit_intercept, self.ridge)

    @property
    def coefficients(self) -> np.ndarray:
        """Copy of the ridge coefficients, ``(n_actions, n_features [+ 1 intercept])``."""
        with self._lock:
            return self._stats.coef.copy()

    def _ucb(self, X: np.ndarray) -> np.ndarray:
        means, variances = self._scores(X)
        return means + self.alpha * np.sqrt(variances)

    def _probabilities_batch(self, X: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        best = np.argmax(np.where(eligible, self._ucb(X), -np.inf), axis=-1)
        return epsilon_mix(best, eligible, self.epsilon)

    def _probabilities(self, x: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return self._probabilities_batch(x, eligible)

    def _params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "epsilon": self.epsilon,
            "ridge": self.ridge,
            "fit_intercept": self.fit_intercept,
        }

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, self._stats.arrays()

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._stats.load(arrays)
