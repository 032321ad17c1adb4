"""How much of the DP optimum's gain a policy deciding from the engine's features can reach.

The DP optimum of ``CartRecoverySequence-v0`` knows each shopper's hidden type, taste match,
coupon expectation and fatigue; a policy sees only the context. :func:`feature_ceiling` fits,
per touch and action, a regression of the *exact* value (``q_optimal``, or the touch's expected
reward) on the features of flows played uniformly at random, with no outcome noise at all, and
scores the greedy policy of each fit on a fresh shop. A learner that learns from realised
rewards should not expect more.

    python -c "from simulator.training.sequence_ceiling import feature_ceiling as f; print(f())"
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from engine.features import FeatureBuilder
from policies.batch_features import BatchFeatures, FeatureVectorPolicy
from simulator.shop.sequence_vector_env import CartRecoverySequenceVectorEnv
from simulator.training.sequence_loop import run_sequence_policy

Model = Callable[[np.ndarray], np.ndarray]


def _collect(
    features: BatchFeatures, carts: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, ``q_optimal`` and expected rewards of every touch of ``carts`` uniform flows."""
    env = CartRecoverySequenceVectorEnv(256)
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng([seed, 3])
    X, q, immediate = [], [], []
    ended = 0
    while ended < carts:
        mask = info["action_mask"].astype(bool)
        X.append(features.many(info["context"].freeze()))
        q.append(info["q_optimal"])
        immediate.append(info["expected_reward"])
        p = mask / mask.sum(axis=1, keepdims=True)
        actions = (rng.random((len(p), 1)) < p.cumsum(axis=1)).argmax(axis=1)
        _, _, terminated, _, info = env.step(actions)
        ended += int(terminated.sum())
    return np.concatenate(X), np.concatenate(q), np.concatenate(immediate)


class _Greedy(FeatureVectorPolicy):
    """Greedy on per-(touch, action) models of the value per reward divisor."""

    kind = "flow"

    def __init__(self, features: BatchFeatures, models: list[list[Model]], name: str) -> None:
        super().__init__()
        self.features, self.models, self.name = features, models, name
        self._touch = features.names.index("touch_index")

    def _decide(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        touch = np.rint(X[:, self._touch]).astype(np.int64)
        q = np.zeros(mask.shape)
        for k, row in enumerate(self.models):
            at = touch == k
            if at.any():
                q[at] = np.column_stack([model(X[at]) for model in row])
        best = np.where(mask, q, -np.inf).argmax(axis=1)
        return np.eye(mask.shape[1])[best]


def _fit(kind: str, X: np.ndarray, y: np.ndarray) -> Model:
    if kind == "linear":
        w = np.linalg.solve(X.T @ X + np.eye(X.shape[1]), X.T @ y)
        return lambda Z: Z @ w
    model = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(X, y)
    return model.predict


def feature_ceiling(
    carts: int = 100_000,
    seed: int = 100,
    eval_carts: int = 20_000,
    eval_seed: int = 0,
    kinds: Sequence[str] = ("linear", "boosting"),
) -> dict[str, Any]:
    """Share of the DP optimum's gain of greedy policies fitted to the exact values.

    Returns ``{"<kind>/<target>": share}`` for every regression ``kind`` (``linear`` ridge,
    ``boosting``: scikit-learn's histogram gradient boosting) and target (``q_optimal``,
    ``expected_reward``), scored as in ``cartwise compare --env sequence`` (last 20% of
    ``eval_carts`` flows on the shop of ``eval_seed``).
    """
    features = BatchFeatures(FeatureBuilder(recovery=True))
    X, q, immediate = _collect(features, carts, seed)
    divisor = features.builder.reward_divisor(X)
    touch = np.rint(X[:, features.names.index("touch_index")]).astype(np.int64)
    out: dict[str, Any] = {"carts": carts, "eval_carts": eval_carts}
    for kind in kinds:
        for target_name, target in (("q_optimal", q), ("expected_reward", immediate)):
            models = [
                [
                    _fit(kind, X[touch == k], target[touch == k, a] / divisor[touch == k])
                    for a in range(target.shape[1])
                ]
                for k in range(int(touch.max()) + 1)
            ]
            policy = _Greedy(features, models, f"{kind}/{target_name}")
            result = run_sequence_policy(policy, eval_carts, eval_seed)
            out[policy.name] = result.share_of_optimal_gain
    return out
