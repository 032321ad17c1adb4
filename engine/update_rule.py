"""The update rule: how outcomes become learner updates.

Two adjustments sit between an outcome and the learner, the same wherever a learner is taught
(the engine online, :class:`policies.LearnerPolicy` in simulated training, batch retraining from
the decision log):

* the probability reported with the taken action is raised to at least ``propensity_floor``
  (bounded importance weights; ``1.0``: an unweighted regression on the taken action). The
  decision log always keeps the true propensity.
* the reward is divided by ``reward_divisor`` of its feature row (the feature builder's
  :meth:`~engine.features.FeatureBuilder.reward_divisor`: profit per reference cart value).

>>> import numpy as np
>>> from engine.learners import make_learner
>>> learner = make_learner("linucb", ["none", "coupon_10"], ["x", "bias"])
>>> teach(learner, np.array([0.5, 1.0]), 1, 0.2, 3.0, propensity_floor=0.5,
...       reward_divisor=lambda x: np.float64(2.0))
>>> teach(learner, np.ones((2, 2)), [0, 1], [0.9, 0.1], [0.0, 1.0])
>>> learner.n_updates
3
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.learners import Learner

__all__ = ["teach"]


def teach(
    learner: Learner,
    X: np.ndarray,
    actions: Any,
    probabilities: Any,
    rewards: Any,
    *,
    propensity_floor: float | None = None,
    reward_divisor: Callable[[np.ndarray], Any] | None = None,
) -> None:
    """Update ``learner`` with one outcome or a batch of them.

    One outcome: ``X`` of shape ``(d,)`` and a scalar action, probability and reward. A batch:
    ``X`` of shape ``(n, d)`` and length-``n`` arrays.

    Args:
        learner: the learner to update.
        X: the feature vector or rows of the decisions.
        actions: index of the taken action(s).
        probabilities: probability with which each was taken.
        rewards: the realised reward(s).
        propensity_floor: report ``max(probability, propensity_floor)``; None: the probability.
        reward_divisor: maps ``X`` to what each reward is divided by; None: plain rewards.
    """
    if X.ndim == 1:
        p = probabilities if propensity_floor is None else max(probabilities, propensity_floor)
        r = rewards if reward_divisor is None else rewards / float(reward_divisor(X))
        learner.update(X, actions, p, r)
        return
    probs = np.asarray(probabilities, dtype=np.float64)
    if propensity_floor is not None:
        probs = np.maximum(probs, propensity_floor)
    values = np.asarray(rewards, dtype=np.float64)
    if reward_divisor is not None:
        values = values / np.asarray(reward_divisor(X), dtype=np.float64)
    learner.update_batch(X, np.asarray(actions, dtype=np.int64), probs, values)
