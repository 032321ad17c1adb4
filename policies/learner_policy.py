"""A contextual-bandit learner of :mod:`engine.learners` behind the :class:`Policy` interface.

Contexts become the engine's feature vectors (:class:`engine.features.FeatureBuilder`, the same
features ``DecisionEngine`` logs), so a policy trained here decides exactly as the engine would.
The batch paths transform a batch of contexts once and call the learner's batch methods.

>>> import numpy as np
>>> policy = LearnerPolicy("linucb", seed=0)
>>> line = {"item_id": "i1", "price": 30.0, "quantity": 1}
>>> ctx = {"user_id": "u1", "timestamp": 0.0, "cart": [line]}
>>> p = policy.probabilities(ctx, np.array([1, 0, 1, 1, 1, 0, 1], dtype=bool))
>>> bool(abs(p.sum() - 1) < 1e-12 and p[1] == 0 and p[5] == 0)
True
>>> policy.update(ctx, 3, float(p[3]), 4.5)
>>> policy.learner.n_updates
1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES
from engine.features import FeatureBuilder
from engine.learners import Learner, make_learner
from engine.update_rule import teach
from policies._batch import normalise_batch, one_hot_batch
from policies.batch_features import BatchFeatures, FeatureVectorPolicy


class LearnerPolicy(FeatureVectorPolicy):
    """Decide with ``engine.learners.make_learner(learner_name, ...)`` and learn online.

    Args:
        learner_name: a name of :func:`engine.learners.available_learners` or a ready
            :class:`~engine.learners.Learner` (whose feature names must match ``features``).
        seed: seed of the learner's own randomness (VW, linear TS).
        features: the engine's feature builder (default: profile features, no CF/risk model).
            Rewards are divided by its :meth:`~engine.features.FeatureBuilder.reward_divisor`
            before the learner sees them, as in the engine.
        greedy: act on the learner's exploit action only (no exploration; for evaluation).
        propensity_floor: the probability reported to the learner with each outcome is raised to
            at least this (in (0, 1]; default: the true probability). Importance-weighted learners
            (VW's ``cb_type="mtr"`` weighs an update by 1 / probability) then have bounded update
            weights; ``1.0`` turns the weighting off, i.e. a plain regression on the taken action,
            as LinUCB and linear TS do. Decisions and their logged propensities are unchanged.
        learner_kwargs: constructor options of the learner (exploration, learning rate...).

    Contexts are assumed valid (as the simulator sends them, or after
    :func:`engine.context.validate_context`).
    """

    learns = True

    def __init__(
        self,
        learner_name: str | Learner = "vw",
        seed: int | np.random.Generator | None = 0,
        features: FeatureBuilder | None = None,
        *,
        greedy: bool = False,
        propensity_floor: float | None = None,
        action_names: Sequence[str] = ACTION_NAMES,
        **learner_kwargs: Any,
    ) -> None:
        super().__init__(action_names)
        self.features = BatchFeatures(features)
        if isinstance(learner_name, Learner):
            if learner_kwargs:
                raise ValueError(
                    f"learner_kwargs == {learner_kwargs!r}, must be empty for a ready Learner"
                )
            learner = learner_name
            self.name = type(learner).__name__
        elif isinstance(learner_name, str):
            learner = make_learner(
                learner_name, self.action_names, self.features.names, seed=seed, **learner_kwargs
            )
            self.name = learner_name
        else:
            raise ValueError(
                f"learner_name == {learner_name!r}, must be a learner name or a Learner"
            )
        if tuple(learner.feature_names) != self.features.names:
            raise ValueError(
                "learner.feature_names do not match the feature builder's feature_names"
            )
        if tuple(learner.action_names) != self.action_names:
            raise ValueError(
                f"learner.action_names == {learner.action_names!r}, must be {self.action_names!r}"
            )
        self.learner = learner
        self.greedy = bool(greedy)
        if propensity_floor is not None and (
            isinstance(propensity_floor, bool)
            or not isinstance(propensity_floor, (int, float))
            or not 0.0 < propensity_floor <= 1.0
        ):
            raise ValueError(f"propensity_floor == {propensity_floor!r}, must be in (0, 1] or None")
        self.propensity_floor = None if propensity_floor is None else float(propensity_floor)
        self.learner_kwargs = dict(learner_kwargs)

    # ------------------------------------------------------------------ decisions
    def _decide(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.greedy:
            return one_hot_batch(self.learner.greedy_batch(X, mask), mask.shape[1])
        return normalise_batch(self.learner.probabilities_batch(X, mask), mask, self.name)

    # ------------------------------------------------------------------ learning
    # Both paths apply the engine's update rule (engine.update_rule.teach).
    def _update(
        self,
        context: Mapping[str, Any],
        action: int,
        probability: float,
        reward: float,
        truth: np.ndarray | None,
    ) -> None:
        teach(
            self.learner,
            self.features.one(context),
            action,
            float(probability),
            reward,
            propensity_floor=self.propensity_floor,
            reward_divisor=self.features.builder.reward_divisor,
        )

    def update_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        actions: np.ndarray,
        probabilities: np.ndarray,
        rewards: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> None:
        """Learn from ``n`` outcomes with one call of the learner's ``update_batch``."""
        teach(
            self.learner,
            self.features.many(contexts),
            actions,
            probabilities,
            rewards,
            propensity_floor=self.propensity_floor,
            reward_divisor=self.features.builder.reward_divisor,
        )
