"""Synthetic logged bandit feedback with exactly known truth, for tests and examples.

A :class:`SyntheticWorld` is a finite pool of contexts drawn once, a logistic expected reward
``q(x, a) = sigmoid(x . theta_a + b_a)``, a logging policy mixing a softmax with a uniform share
(so every propensity is at least ``logging_epsilon / n_actions``) and an epsilon-greedy target
policy. Contexts are sampled uniformly from the pool, so the target policy's value
``mean_x sum_a pi(a|x) q(x, a)`` is computed exactly, not estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.sampling import sample_actions
from engine.validation import check_integer


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class SyntheticLog:
    """One sampled log; ``expected_rewards`` is the true ``q`` for every row and action."""

    contexts: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    logged_probs: np.ndarray
    logging_probs: np.ndarray
    target_probs: np.ndarray
    expected_rewards: np.ndarray
    true_value: float  # population value of the target policy (exact)
    logging_value: float  # population value of the logging policy (exact)


@dataclass(frozen=True)
class SyntheticWorld:
    """A fixed bandit problem; :meth:`sample` draws logs from it.

    >>> world = SyntheticWorld.make(seed=1)
    >>> log = world.sample(1000, np.random.default_rng(2))
    >>> log.target_probs.shape, 0.0 < log.true_value < 1.0
    ((1000, 5), True)
    """

    pool: np.ndarray  # (M, d) contexts
    q: np.ndarray  # (M, K) expected rewards
    logging: np.ndarray  # (M, K) logging policy
    target: np.ndarray  # (M, K) target policy

    @classmethod
    def make(
        cls,
        n_actions: int = 5,
        dim: int = 3,
        pool_size: int = 200,
        logging_temperature: float = 1.0,
        logging_epsilon: float = 0.3,
        target_epsilon: float = 0.2,
        seed: int = 0,
    ) -> SyntheticWorld:
        """Build a world; the ``*_epsilon`` are the policies' uniform exploration shares."""
        n_actions = check_integer(n_actions, "n_actions", low=1)
        dim = check_integer(dim, "dim", low=1)
        pool_size = check_integer(pool_size, "pool_size", low=1)
        if not 0.0 < logging_epsilon <= 1.0:
            raise ValueError(f"logging_epsilon == {logging_epsilon}, must be in (0, 1]")
        if not 0.0 <= target_epsilon <= 1.0:
            raise ValueError(f"target_epsilon == {target_epsilon}, must be in [0, 1]")
        if not logging_temperature > 0:
            raise ValueError(f"logging_temperature == {logging_temperature}, must be > 0")
        rng = np.random.default_rng(seed)
        pool = rng.normal(size=(pool_size, dim))
        theta = rng.normal(scale=0.8, size=(n_actions, dim))
        bias = rng.normal(loc=-1.0, scale=0.5, size=n_actions)
        q = 1.0 / (1.0 + np.exp(-(pool @ theta.T + bias)))
        phi = rng.normal(size=(n_actions, dim))
        softmax = _softmax(pool @ phi.T / logging_temperature)
        logging = (1.0 - logging_epsilon) * softmax + logging_epsilon / n_actions
        greedy = np.zeros_like(q)
        greedy[np.arange(pool_size), q.argmax(axis=1)] = 1.0
        target = (1.0 - target_epsilon) * greedy + target_epsilon / n_actions
        return cls(pool, q, logging, target)

    @property
    def true_value(self) -> float:
        """Exact value of the target policy."""
        return float(np.mean(np.sum(self.target * self.q, axis=1)))

    @property
    def logging_value(self) -> float:
        """Exact value of the logging policy."""
        return float(np.mean(np.sum(self.logging * self.q, axis=1)))

    def sample(self, n: int, rng: np.random.Generator) -> SyntheticLog:
        """Draw ``n`` rounds: context uniform from the pool, action from logging, 0/1 reward."""
        n = check_integer(n, "n", low=1)
        idx = rng.integers(self.pool.shape[0], size=n)
        logging = self.logging[idx]
        actions = sample_actions(logging, rng)
        rows = np.arange(n)
        q = self.q[idx]
        rewards = (rng.random(n) < q[rows, actions]).astype(np.float64)
        return SyntheticLog(
            contexts=self.pool[idx],
            actions=actions,
            rewards=rewards,
            logged_probs=logging[rows, actions],
            logging_probs=logging,
            target_probs=self.target[idx],
            expected_rewards=q,
            true_value=self.true_value,
            logging_value=self.logging_value,
        )
