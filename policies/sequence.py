"""Policies for multi-touch recovery flows (contexts with ``recovery``, docs/context-schema.md).

* :class:`FlowPolicy` — a fixed flow: a given action (or the hand rule) at each touch.
* :class:`FittedQPolicy` — a sequence learner: linear Q per action (one model across touches,
  with touch intercepts) on the engine's features with
  :data:`engine.features.RECOVERY_FEATURES`, fitted by fitted-Q iteration on the transitions it
  has seen (the return to the end of the flow, not the touch's reward), epsilon-greedy while it
  learns.

The per-touch contextual bandit is a :class:`~policies.LearnerPolicy` on
``FeatureBuilder(recovery=True)`` updated with each touch's reward (myopic). Every policy here has
a ``kind``: ``"flow"``, ``"bandit"`` or ``"sequence"``.

>>> import numpy as np
>>> flow = FlowPolicy(["recall_message", "recall_message", "coupon_10"])
>>> cart = [{"item_id": "i", "price": 30.0, "quantity": 1}]
>>> ctx = {"cart": cart, "recovery": {"touch": 3, "previous": []}}
>>> flow.action_names[int(flow.probabilities(ctx, np.ones(7, dtype=bool)).argmax())]
'coupon_10'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES
from engine.features import PROFILE_SCALING, FeatureBuilder
from engine.validation import check_integer, check_non_negative, check_probability
from policies._batch import check_mask_batch, column_index
from policies.base import Policy
from policies.batch_features import BatchFeatures, FeatureVectorPolicy
from policies.rule import RulePolicy, cart_value

RULE = "rule"


def touch_of(context: Mapping[str, Any]) -> int:
    """0-based touch index of a context (0 without ``recovery``)."""
    recovery = context.get("recovery")
    return int(recovery["touch"]) - 1 if recovery else 0


class FlowPolicy(Policy):
    """A fixed flow: ``steps[k]`` at touch ``k + 1`` (an action name or ``"rule"``).

    ``none`` after the last step and when the action is not eligible.
    """

    kind = "flow"

    def __init__(
        self,
        steps: Sequence[str],
        name: str | None = None,
        action_names: Sequence[str] = ACTION_NAMES,
    ) -> None:
        super().__init__(action_names)
        steps = tuple(steps)
        if not steps:
            raise ValueError("steps is empty, must name at least one action")
        for i, s in enumerate(steps):
            if s != RULE and s not in self._index:
                raise ValueError(
                    f"steps[{i}] == {s!r}, must be 'rule' or one of {list(self.action_names)}"
                )
        self.steps = steps
        self.name = name or "flow:" + "-".join(steps)
        self._rule = RulePolicy(action_names=action_names)

    def decide_touches(
        self, touch: np.ndarray, values: np.ndarray, eligible: np.ndarray
    ) -> np.ndarray:
        """``(n, n_actions)`` one-hot rows for carts at 0-based ``touch`` worth ``values`` USD."""
        mask = check_mask_batch(eligible, len(self.action_names), len(touch))
        out = np.zeros(mask.shape)
        out[:, self._index["none"]] = 1.0
        for k, step in enumerate(self.steps):
            at = np.flatnonzero(np.asarray(touch) == k)
            if not len(at):
                continue
            if step == RULE:
                out[at] = self._rule.decide_values(np.asarray(values)[at], mask[at])
            else:
                a = self._index[step]
                ok = mask[at, a]
                out[at] = 0.0
                out[at, np.where(ok, a, self._index["none"])] = 1.0
        return out

    def feature_probabilities(
        self, features: np.ndarray, feature_names: Sequence[str], eligible: np.ndarray
    ) -> np.ndarray:
        """Decisions from logged features.

        The touch comes from ``touch_index`` (0 when not logged), the cart value from
        ``cart_value_log`` (for the rule).
        """
        X = np.asarray(features, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(feature_names):
            raise ValueError(f"features has shape {X.shape}, must be (n, {len(feature_names)})")
        names = [str(n)[2:] if str(n).startswith("f_") else str(n) for n in feature_names]
        touch = (
            np.rint(X[:, names.index("touch_index")]).astype(np.int64)
            if "touch_index" in names
            else np.zeros(len(X), dtype=np.int64)
        )
        (col,) = column_index(feature_names, ["cart_value_log"])
        centre, scale = PROFILE_SCALING["cart_value_log"]
        values = np.expm1(X[:, col] * scale + centre) * (1.0 + 1e-9)
        return self.decide_touches(touch, values, eligible)

    def _probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        return self.decide_touches(
            np.array([touch_of(context)]), np.array([cart_value(context)]), eligible[None, :]
        )[0]

    def probabilities_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        eligible: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(n, n_actions)`` one-hot decisions for a batch of contexts."""
        return self.decide_touches(
            np.array([touch_of(c) for c in contexts], dtype=np.int64),
            np.array([cart_value(c) for c in contexts]),
            eligible,
        )


class FittedQPolicy(FeatureVectorPolicy):
    """Linear Q per action, shared across touches, fitted by fitted-Q iteration on the return.

    The features are the engine's (with :data:`engine.features.RECOVERY_FEATURES`) plus a
    one-hot of the touch for touches after the first (so each touch has its own intercept per
    action) and, with ``touch_interactions``, the touch one-hot times every feature (separate
    per-touch models, as in plain backward fitted-Q iteration). Each of ``iterations`` passes
    regresses, per action, the touch's reward plus the best fitted Q of the next touch (0 at the
    end of the flow) on the features (ridge). Decisions are greedy on the fitted Q plus an
    upper-confidence bonus ``alpha * sqrt(z' C_a z)`` (``C_a`` the ridge covariance), with
    ``epsilon`` uniform exploration decaying to ``min_epsilon``.

    Args:
        n_touches: touches per flow ``K``.
        epsilon: uniform exploration at the start; it decays as ``epsilon * scale / (scale +
            rows)`` to ``min_epsilon`` with the transitions seen.
        min_epsilon: exploration floor.
        scale: transitions over which exploration halves.
        ridge: L2 penalty of each regression.
        alpha: weight of the confidence bonus (0: greedy on the fit).
        iterations: fitted-Q passes per :meth:`fit` (at least ``K`` for the last touch's
            reward to reach the first touch).
        touch_interactions: separate coefficients per touch (the touch one-hot times every
            feature) instead of touch intercepts only.
        fit_every: flows between refits when trained online
            (:func:`simulator.training.sequence_loop.run_sequence_policy`).
        deviation_ridge: None: one ridge regression per action. A number: one pooled
            regression, ``Q(z, a) = z . (w + d_a)`` with a weight ``w`` shared by the actions
            (penalty ``ridge``) and per-action deviations ``d_a`` (penalty ``deviation_ridge``,
            ``ridge`` on their intercepts), so what the actions share (the cart's unprompted
            purchase, the later touches) is learnt from every transition.
        seed: unused (the policy's decisions are its probabilities; sampling is the caller's).
        features: a feature builder with ``recovery=True`` (default: profile + recovery features).

    Learning goes through :meth:`observe` (transitions with their successor features) and
    :meth:`fit`; :meth:`update` (one touch's reward, the bandit interface) is not enough for it.
    """

    kind = "sequence"
    learns = True

    def __init__(
        self,
        n_touches: int = 3,
        epsilon: float = 0.2,
        min_epsilon: float = 0.02,
        scale: float = 10_000.0,
        ridge: float = 30.0,
        alpha: float = 0.0,
        iterations: int | None = None,
        touch_interactions: bool = False,
        fit_every: int = 250,
        deviation_ridge: float | None = None,
        seed: Any = 0,
        features: FeatureBuilder | None = None,
        action_names: Sequence[str] = ACTION_NAMES,
    ) -> None:
        super().__init__(action_names)
        self.K = check_integer(n_touches, "n_touches", low=1)
        self.epsilon = check_probability(epsilon, "epsilon")
        self.min_epsilon = check_probability(min_epsilon, "min_epsilon")
        self.scale = check_non_negative(scale, "scale")
        self.ridge = check_non_negative(ridge, "ridge")
        self.alpha = check_non_negative(alpha, "alpha")
        self.iterations = (
            self.K + 1 if iterations is None else check_integer(iterations, "iterations", low=1)
        )
        if not isinstance(touch_interactions, bool):
            raise ValueError(f"touch_interactions == {touch_interactions!r}, must be a bool")
        self.touch_interactions = touch_interactions
        self.fit_every = check_integer(fit_every, "fit_every", low=1)
        self.deviation_ridge = (
            None
            if deviation_ridge is None
            else check_non_negative(deviation_ridge, "deviation_ridge")
        )
        builder = features if features is not None else FeatureBuilder(recovery=True)
        if not getattr(builder, "recovery", False):
            raise ValueError(
                "features must be built with recovery=True (the touch index is a feature)"
            )
        self.features = BatchFeatures(builder)
        self.name = "seq:fqi"
        self._touch_col = self.features.names.index("touch_index")
        d = len(self.features.names)
        dz = d * self.K if touch_interactions else d + self.K - 1
        n_a = len(self.action_names)
        self.weights = np.zeros((n_a, dz))
        self.covariance = np.repeat(np.eye(dz)[None] / max(self.ridge, 1e-12), n_a, axis=0)
        self._data: list[tuple[np.ndarray, ...]] = []
        self._grams = np.zeros((n_a, dz, dz))  # Z_a' Z_a of the transitions stored
        self.rows = 0
        self.fitted = False

    # ------------------------------------------------------------------ decisions
    def design(self, X: np.ndarray) -> np.ndarray:
        """The regression rows ``z`` of feature rows ``X`` (see the class notes)."""
        X = np.asarray(X, dtype=np.float64)
        k = np.clip(np.rint(X[:, self._touch_col]).astype(np.int64), 0, self.K - 1)
        if self.touch_interactions:
            Z = np.zeros((len(X), self.K, X.shape[1]))
            Z[np.arange(len(X)), k] = X
            return Z.reshape(len(X), -1)
        onehot = (k[:, None] == np.arange(1, self.K)[None, :]).astype(np.float64)
        return np.hstack([X, onehot])

    def q_values(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` fitted Q (per USD of the reward divisor) of feature rows ``X``."""
        return self.design(X) @ self.weights.T

    @property
    def current_epsilon(self) -> float:
        """Exploration now."""
        return (
            max(self.min_epsilon, self.epsilon * self.scale / (self.scale + self.rows))
            if self.fitted
            else 1.0
        )

    def _decide(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        Z = self.design(X)
        q = Z @ self.weights.T
        if self.alpha > 0:
            width = np.einsum("nd,ade,ne->na", Z, self.covariance, Z)
            q = q + self.alpha * np.sqrt(np.maximum(width, 0.0))
        q = np.where(mask, q, -np.inf)
        out = np.zeros(mask.shape)
        out[np.arange(len(X)), q.argmax(axis=1)] = 1.0
        eps = self.current_epsilon
        return (1.0 - eps) * out + eps * mask / mask.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ learning
    def observe(
        self,
        X: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        done: np.ndarray,
        X_next: np.ndarray,
        mask_next: np.ndarray,
    ) -> None:
        """Store transitions.

        Each is features, action, the touch's reward (USD), whether the flow ended, and the next
        touch's features and eligibility (ignored where ``done``).
        """
        X = np.asarray(X, dtype=np.float64)
        div = self.features.builder.reward_divisor(X)
        Z = self.design(X)
        actions = np.asarray(actions, dtype=np.int64)
        for act in np.unique(actions):
            Za = Z[actions == act]
            self._grams[act] += Za.T @ Za
        self._data.append(
            (
                Z,
                actions,
                np.asarray(rewards, dtype=np.float64) / div,
                np.asarray(done, dtype=bool),
                self.design(np.asarray(X_next, dtype=np.float64)),
                np.asarray(mask_next, dtype=bool),
            )
        )
        self.rows += len(X)

    def fit(self) -> None:
        """Fitted-Q iteration on every transition stored.

        ``iterations`` passes, each regressing (per action) the reward plus the best current Q of
        the next touch.
        """
        if not self._data:
            return
        Z, a, r, done, Zn, mn = (np.concatenate(c) for c in zip(*self._data, strict=True))
        self._data = [(Z, a, r, done, Zn, mn)]
        n_a, dz = self.weights.shape
        live = np.flatnonzero(~done)
        grams = []
        for act in range(n_a):
            rows = a == act
            grams.append((rows, Z[rows], self._grams[act] + self.ridge * np.eye(dz)))
        pooled = None if self.deviation_ridge is None else self._pooled_system(grams)
        for _ in range(self.iterations):
            y = r.copy()
            if len(live):
                qn = Zn[live] @ self.weights.T
                y[live] += np.where(mn[live], qn, -np.inf).max(axis=1)
            weights = self.weights.copy()
            if pooled is not None:
                rhs = [Za.T @ y[rows] for rows, Za, _ in grams]
                coef = np.linalg.solve(pooled, np.concatenate([np.sum(rhs, axis=0), *rhs]))
                weights = coef[:dz][None, :] + coef[dz:].reshape(n_a, dz)
            else:
                for act, (rows, Za, gram) in enumerate(grams):
                    if len(Za):
                        weights[act] = np.linalg.solve(gram, Za.T @ y[rows])
            self.weights = weights
        for act, (_, _, gram) in enumerate(grams):
            self.covariance[act] = np.linalg.inv(gram)
        self.fitted = True

    def _pooled_system(self, grams: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
        """Normal equations of the pooled regression over ``[w, d_1, ..., d_A]``."""
        n_a, dz = self.weights.shape
        eye = np.eye(dz)
        raw = [gram - self.ridge * eye for _, _, gram in grams]  # Z_a' Z_a
        penalty = np.full(dz, float(self.deviation_ridge))
        penalty[self._intercepts()] = self.ridge
        system = np.zeros(((n_a + 1) * dz, (n_a + 1) * dz))
        system[:dz, :dz] = np.sum(raw, axis=0) + self.ridge * eye
        for act, g in enumerate(raw):
            block = slice((act + 1) * dz, (act + 2) * dz)
            system[:dz, block] = system[block, :dz] = g
            system[block, block] = g + np.diag(penalty)
        return system

    def _intercepts(self) -> np.ndarray:
        """Columns of the design that are intercepts (the bias, per touch)."""
        d = len(self.features.names)
        bias = self.features.names.index("bias")
        if self.touch_interactions:
            return np.arange(self.K) * d + bias
        return np.concatenate([[bias], d + np.arange(self.K - 1)])


#: The fixed flows, by registry name: one reminder at the first touch; three reminders; reminder,
#: reminder, coupon_10 last; the hand rule at every touch.
FLOWS: dict[str, tuple[str, ...]] = {
    "seq:reminder": ("recall_message",),
    "seq:3-reminders": ("recall_message",) * 3,
    "seq:reminders-coupon": ("recall_message", "recall_message", "coupon_10"),
    "seq:rule": (RULE,) * 3,
}
