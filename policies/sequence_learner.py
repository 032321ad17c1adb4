"""The sequence learner: fitted Q = the touch's reward model + a learnt continuation value.

:class:`FittedQPolicy` models ``Q_k(x, a) = R(x, a) + C_k(x, a)`` at touch ``k``:

* ``R`` — the touch's expected reward: a linear model per action across touches (the touch
  index is a feature), updated with every touch's reward as it arrives and played with a
  LinUCB confidence bonus, as the per-touch bandit (``seq:linucb``) does; by default the action
  models are pooled (:class:`~policies.ridge_models.PooledRidge`: a weight shared by the
  actions plus penalised deviations), ``deviation_ridge=None`` gives LinUCB's independent ones.
* ``C_k`` — what follows the touch: ``E[V_{k+1}(x') ; the flow goes on | x, a]`` with ``V_{k+1}
  = max_a Q_{k+1}``, one ridge model per (touch, action), ``C = 0`` at the last touch. Refitted
  every ``fit_every`` flows backwards from the last touch on every transition stored, the
  targets bootstrapped from the next touch's current model.

At the last touch the learner is its reward bandit; before it, the continuation is what a flow-aware
policy adds (the value of keeping a coupon for later, the cost of a purchase now ending the flow,
the unsubscribes more contacts risk). Rewards are taught per cart value, as in the engine
(:meth:`engine.features.FeatureBuilder.reward_divisor`), and divided by ``reward_scale`` so that
``alpha`` and ``ridge`` mean what they mean for LinUCB. How it compares with the bandit and the
DP optimum is in docs/benchmarks.md.

>>> import numpy as np
>>> policy = FittedQPolicy(n_touches=2, epsilon=0.0)
>>> cart = [{"item_id": "i", "price": 30.0, "quantity": 1}]
>>> ctx = {"user_id": "u", "timestamp": 0.0, "cart": cart, "recovery": {"touch": 1, "previous": []}}
>>> policy.kind, float(policy.probabilities(ctx, np.ones(7, dtype=bool)).sum())
('sequence', 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES
from engine.features import FeatureBuilder
from engine.validation import check_integer, check_non_negative, check_positive, check_probability
from policies.batch_features import BatchFeatures, FeatureVectorPolicy
from policies.ridge_models import PooledRidge, RidgeModels


class FittedQPolicy(FeatureVectorPolicy):
    """Fitted Q of the flow's return: a per-touch reward bandit plus a learnt continuation.

    Args:
        n_touches: touches per flow ``K``.
        alpha: LinUCB confidence bonus on the reward model (in ``reward_scale`` units).
        epsilon: uniform exploration mixed into every decision.
        ridge: penalty of the reward models.
        continuation_ridge: penalty of the continuation models.
        continuation: learn ``C`` (False: the myopic bandit with this learner's reward model).
        deviation_ridge: a number: pooled reward models ``x . (w + d_a)`` with this penalty on
            the deviations ``d_a`` (``ridge`` on ``w`` and on the deviations' intercepts). None:
            one independent reward model per action (LinUCB's).
        reward_scale: rewards (per cart value) are divided by this before fitting.
        fit_every: flows between refits of ``C`` when trained online
            (:func:`simulator.training.sequence_loop.run_sequence_policy`).
        seed: unused (decisions are probabilities; sampling is the caller's).
        features: a feature builder with ``recovery=True`` (default: profile + recovery).

    Learning goes through :meth:`observe` (transitions with their successor's features) and
    :meth:`fit`.
    """

    kind = "sequence"
    learns = True

    def __init__(
        self,
        n_touches: int = 3,
        alpha: float = 1.0,
        epsilon: float = 0.01,
        ridge: float = 30.0,
        continuation_ridge: float = 30.0,
        continuation: bool = True,
        deviation_ridge: float | None = 300.0,
        reward_scale: float = 10.0,
        fit_every: int = 250,
        seed: Any = 0,
        features: FeatureBuilder | None = None,
        action_names: Sequence[str] = ACTION_NAMES,
    ) -> None:
        super().__init__(action_names)
        self.K = check_integer(n_touches, "n_touches", low=1)
        self.alpha = check_non_negative(alpha, "alpha")
        self.epsilon = check_probability(epsilon, "epsilon")
        self.reward_scale = check_positive(reward_scale, "reward_scale")
        self.fit_every = check_integer(fit_every, "fit_every", low=1)
        if not isinstance(continuation, bool):
            raise ValueError(f"continuation == {continuation!r}, must be a bool")
        self.continuation = continuation
        builder = features if features is not None else FeatureBuilder(recovery=True)
        if not getattr(builder, "recovery", False):
            raise ValueError(
                "features must be built with recovery=True (the touch index is a feature)"
            )
        self.features = BatchFeatures(builder)
        self.name = "seq:fqi"
        self._touch = self.features.names.index("touch_index")
        n_a, d = len(self.action_names), len(self.features.names)
        ridge = check_positive(ridge, "ridge")
        if deviation_ridge is None:
            self.reward: RidgeModels = RidgeModels(n_a, d, ridge)
        else:
            penalty = np.full(d, check_positive(deviation_ridge, "deviation_ridge"))
            penalty[self.features.names.index("bias")] = ridge
            self.reward = PooledRidge(n_a, d, ridge, penalty)
        self.future = RidgeModels(
            max(self.K - 1, 1) * n_a, d, check_positive(continuation_ridge, "continuation_ridge")
        )
        self._stored: list[tuple[np.ndarray, ...]] = []
        self.rows = 0

    def touches(self, X: np.ndarray) -> np.ndarray:
        """0-based touch of each feature row."""
        return np.clip(np.rint(X[:, self._touch]).astype(np.int64), 0, self.K - 1)

    def q_values(self, X: np.ndarray, bonus: bool = False) -> np.ndarray:
        """``(n, n_actions)`` fitted Q of rows ``X`` (per ``reward_scale`` USD per cart value).

        With ``bonus``: plus the reward model's confidence bonus.
        """
        X = np.asarray(X, dtype=np.float64)
        n_a = len(self.action_names)
        q = X @ self.reward.coef.T
        if bonus and self.alpha > 0:
            q += self.alpha * np.sqrt(self.reward.widths(X, range(n_a)))
        if self.continuation:
            k = self.touches(X)
            for t in range(self.K - 1):
                at = k == t
                q[at] += X[at] @ self.future.coef[t * n_a : (t + 1) * n_a].T
        return q

    def _decide(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        q = np.where(mask, self.q_values(X, bonus=True), -np.inf)
        out = np.zeros(mask.shape)
        out[np.arange(len(X)), q.argmax(axis=1)] = 1.0
        return (1.0 - self.epsilon) * out + self.epsilon * mask / mask.sum(axis=1, keepdims=True)

    def observe(
        self,
        X: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        done: np.ndarray,
        X_next: np.ndarray,
        mask_next: np.ndarray,
    ) -> None:
        """Learn the touches' rewards now and store the transitions for :meth:`fit`.

        Rows: features, action, the touch's reward (USD), whether the flow ended, and the next
        touch's features and eligibility (ignored where ``done``).
        """
        X = np.asarray(X, dtype=np.float64)
        actions = np.asarray(actions, dtype=np.int64)
        div = self.features.builder.reward_divisor(X) * self.reward_scale
        self.reward.add_rows(X, actions, np.asarray(rewards, dtype=np.float64) / div)
        self.rows += len(X)
        k = self.touches(X)
        early = k < self.K - 1
        if not (self.continuation and early.any()):
            return
        models = k[early] * len(self.action_names) + actions[early]
        self.future.add_rows(X[early], models)
        self._stored.append(
            (
                X[early].astype(np.float32),
                models,
                np.asarray(done, dtype=bool)[early],
                np.asarray(X_next, dtype=np.float32)[early],
                np.asarray(mask_next, dtype=bool)[early],
            )
        )

    def fit(self) -> None:
        """Refit the continuation models, last touch first, on every stored transition.

        The target of a transition is 0 where the flow ended, else the best fitted Q (no bonus)
        of the next touch's features among its eligible actions.
        """
        if not self._stored:
            return
        X, models, done, X_next, mask_next = (
            np.concatenate(c) for c in zip(*self._stored, strict=True)
        )
        self._stored = [(X, models, done, X_next, mask_next)]
        n_a = len(self.action_names)
        touch = models // n_a
        y = np.zeros(len(X))
        for t in reversed(range(self.K - 1)):
            rows = touch == t
            live = np.flatnonzero(rows & ~done)
            q_next = self.q_values(X_next[live])
            y[live] = np.where(mask_next[live], q_next, -np.inf).max(axis=1)
            self.future.refit(
                X[rows].astype(np.float64), models[rows], y[rows], range(t * n_a, (t + 1) * n_a)
            )
