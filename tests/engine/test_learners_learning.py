"""Learning against truth: on a synthetic linear contextual bandit with known expected rewards,
each learner's greedy policy captures most of the oracle's gain over always doing 'none'."""

from __future__ import annotations

import numpy as np
import pytest

from engine.actions import ACTION_NAMES
from engine.learners import Learner, make_learner

ACTIONS = ACTION_NAMES
N_A, N_D = len(ACTIONS), 8
PROFIT_SCALE = 10.0  # rewards in "currency": expected values of a few units, noise sd 10
ROUNDS, TEST_ROWS = 4000, 5000


class LinearBandit:
    """Expected reward ``PROFIT_SCALE * (c_a + w_a . x)``, ``w_none = c_none = 0``, plus
    N(0, PROFIT_SCALE^2) noise; each non-'none' action is eligible with probability 0.8."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(0.0, 0.6, size=(N_A, N_D))
        self.offsets = rng.normal(0.0, 0.4, size=N_A)
        self.weights[0], self.offsets[0] = 0.0, 0.0

    def contexts(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.normal(size=(n, N_D))
        eligible = rng.random((n, N_A)) < 0.8
        eligible[:, 0] = True
        return X, eligible

    def expected(self, X: np.ndarray) -> np.ndarray:
        return PROFIT_SCALE * (X @ self.weights.T + self.offsets)

    def capture(self, learner: Learner, rng: np.random.Generator) -> float:
        """(value of greedy - value of 'none') / (value of oracle - value of 'none')."""
        X, eligible = self.contexts(rng, TEST_ROWS)
        mu = self.expected(X)
        oracle = np.where(eligible, mu, -np.inf).max(axis=1).mean() - mu[:, 0].mean()
        chosen = learner.greedy_batch(X, eligible)
        return float((mu[np.arange(TEST_ROWS), chosen].mean() - mu[:, 0].mean()) / oracle)


def _train_online(learner: Learner, bandit: LinearBandit, rng: np.random.Generator) -> None:
    X, eligible = bandit.contexts(rng, ROUNDS)
    mu = bandit.expected(X)
    for t in range(ROUNDS):
        probs = learner.probabilities(X[t], eligible[t])
        a = int(rng.choice(N_A, p=probs))
        learner.update(X[t], a, float(probs[a]), float(mu[t, a] + PROFIT_SCALE * rng.normal()))


def _train_batched(learner: Learner, bandit: LinearBandit, rng: np.random.Generator) -> None:
    """The training loop's path: decide a block with the current model, then learn it."""
    X, eligible = bandit.contexts(rng, ROUNDS)
    mu = bandit.expected(X)
    for start in range(0, ROUNDS, 250):
        rows = slice(start, start + 250)
        probs = learner.probabilities_batch(X[rows], eligible[rows])
        cum = probs.cumsum(axis=1)
        actions = np.minimum((cum < rng.random((len(cum), 1))).sum(axis=1), N_A - 1)
        taken = probs[np.arange(len(actions)), actions]
        rewards = mu[rows][np.arange(len(actions)), actions]
        rewards = rewards + PROFIT_SCALE * rng.normal(size=len(actions))
        learner.update_batch(X[rows], actions, taken, rewards)


# Online captures measured with this file's code on bandit seeds 0, 10, .., 40 (min / mean):
#   linucb .99/.99, lints .99/.99, vw (= squarecb) .73/.86, vw-epsilon .81/.88, vw-bag .85/.91,
#   vw-cover .73/.88, vw-rnd .81/.91, vw-softmax .87/.91; batched: linucb .99, lints .99,
#   vw-epsilon .79/.88. Untrained learners capture <= 0.09. Thresholds sit below each minimum.
THRESHOLDS = {
    "linucb": 0.95,
    "lints": 0.95,
    "vw": 0.65,
    "vw-epsilon": 0.70,
    "vw-bag": 0.75,
    "vw-cover": 0.65,
    "vw-rnd": 0.70,
    "vw-softmax": 0.75,
}  # "vw-squarecb" is the same configuration as "vw"


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_online_learning_captures_the_oracle_gain(name):
    bandit = LinearBandit(seed=0)
    learner = make_learner(
        name, ACTIONS, [f"x{i}" for i in range(N_D)], seed=1, reward_scale=PROFIT_SCALE
    )
    _train_online(learner, bandit, np.random.default_rng(2))
    untrained = make_learner(name, ACTIONS, [f"x{i}" for i in range(N_D)], seed=1)
    assert bandit.capture(learner, np.random.default_rng(3)) >= THRESHOLDS[name]
    # sanity of the yardstick: an untrained learner captures far less
    assert bandit.capture(untrained, np.random.default_rng(3)) < 0.2


@pytest.mark.parametrize("name", ["linucb", "lints", "vw-epsilon"])
def test_batched_training_captures_the_oracle_gain(name):
    bandit = LinearBandit(seed=0)
    learner = make_learner(
        name, ACTIONS, [f"x{i}" for i in range(N_D)], seed=1, reward_scale=PROFIT_SCALE
    )
    _train_batched(learner, bandit, np.random.default_rng(4))
    assert bandit.capture(learner, np.random.default_rng(3)) >= THRESHOLDS[name]
