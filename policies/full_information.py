"""The full-information learner: greedy on the engine's features, taught the true rewards.

It is trained on the TRUE expected reward of every action of every cart.

It is the ceiling for any policy that sees the same features: ``oracle - full_information`` is
what the features cannot tell, ``full_information - learner`` what a bandit learner has not
learnt yet (it only sees the realised reward of the action it took). One ridge regression per
action; all actions share the design matrix, so they share one precision matrix
``P = ridge * I + sum x x^T`` and the coefficients are ``P^-1 sum x truth^T`` (updated per batch).
Like the bandit learners, it regresses on the target the feature builder sets: with
``reward_per_value`` (the default) each row's truth is divided by the builder's
:meth:`~engine.features.FeatureBuilder.reward_divisor`, and :meth:`predict` multiplies back.

>>> import numpy as np
>>> from engine.features import FeatureBuilder
>>> fi = FullInformationPolicy(FeatureBuilder(reward_per_value=False), ridge=1e-6)
>>> X = np.random.default_rng(0).normal(size=(50, fi.n_features))
>>> fi.fit(X, X[:, :7] * 2.0)               # truth of action a is 2 * feature a
>>> bool(np.allclose(fi.coefficients[:, :7], 2.0 * np.eye(7), atol=1e-6))
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES
from engine.features import FeatureBuilder
from policies._batch import one_hot_batch
from policies.batch_features import BatchFeatures, FeatureVectorPolicy


class FullInformationPolicy(FeatureVectorPolicy):
    """Greedy on per-action ridge regressions of the true expected rewards (``truth``).

    Args:
        features: the engine's feature builder (default: profile features, no CF/risk model).
        ridge: ridge penalty (> 0), in squared-feature units.

    ``update``/``update_batch`` need ``truth`` (the simulator's ``info["expected_reward"]``);
    deciding does not, but like the oracle it is marked ``needs_truth`` because it cannot learn
    without it. ``feature_probabilities`` decides from logged features.
    """

    name = "full-information"
    learns = True
    needs_truth = True

    def __init__(
        self,
        features: FeatureBuilder | None = None,
        ridge: float = 1.0,
        action_names: Sequence[str] = ACTION_NAMES,
    ) -> None:
        super().__init__(action_names)
        if (
            isinstance(ridge, bool)
            or not isinstance(ridge, (int, float))
            or not math.isfinite(ridge)
            or ridge <= 0
        ):
            raise ValueError(f"ridge == {ridge!r}, must be a finite number > 0")
        self.ridge = float(ridge)
        self.features = BatchFeatures(features)
        d = len(self.features.names)
        self._precision = np.eye(d) * self.ridge
        self._xty = np.zeros((d, len(self.action_names)))
        self._coef = np.zeros((d, len(self.action_names)))
        self.n_updates = 0

    @property
    def n_features(self) -> int:
        """Number of features in the design matrix."""
        return len(self.features.names)

    @property
    def coefficients(self) -> np.ndarray:
        """``(n_actions, n_features)`` ridge coefficients (copy), in the regression's units."""
        return self._coef.T.copy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` predicted expected rewards (USD) for feature rows ``X``."""
        X = np.asarray(X, dtype=np.float64)
        return (X @ self._coef) * self.features.builder.reward_divisor(X)[:, None]

    def fit(self, X: np.ndarray, truth: np.ndarray) -> None:
        """Add feature rows ``X`` ``(n, d)`` with the true rewards ``truth`` ``(n, n_actions)``."""
        X = np.asarray(X, dtype=np.float64)
        T = np.asarray(truth, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}, must be (n, {self.n_features})")
        if T.shape != (X.shape[0], len(self.action_names)) or not np.all(np.isfinite(T)):
            raise ValueError(
                f"truth has shape {T.shape}, must be finite with shape ({X.shape[0]}, "
                f"{len(self.action_names)})"
            )
        if not np.all(np.isfinite(X)):
            raise ValueError("X has non-finite entries")
        self._precision += X.T @ X
        self._xty += X.T @ (T / self.features.builder.reward_divisor(X)[:, None])
        self._coef = np.linalg.solve(self._precision, self._xty)
        self.n_updates += X.shape[0]

    # ------------------------------------------------------------------ decisions
    def _decide(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # the per-row divisor is positive, so the per-value scores rank actions as predict() does
        return one_hot_batch(np.where(mask, X @ self._coef, -np.inf).argmax(axis=1), mask.shape[1])

    # ------------------------------------------------------------------ learning
    def _update(
        self,
        context: Mapping[str, Any],
        action: int,
        probability: float,
        reward: float,
        truth: np.ndarray | None,
    ) -> None:
        if truth is None:
            raise ValueError(f"policy {self.name!r} learns from truth=, got None")
        self.fit(self.features.one(context)[None, :], np.asarray(truth, dtype=np.float64)[None, :])

    def update_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        actions: np.ndarray,
        probabilities: np.ndarray,
        rewards: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> None:
        """Learn the true rewards of every action for ``n`` contexts (actions/rewards unused)."""
        if truth is None:
            raise ValueError(f"policy {self.name!r} learns from truth=, got None")
        self.fit(self.features.many(contexts), truth)
