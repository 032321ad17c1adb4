"""Shared fixtures for engine tests: realistic context records from the simulator."""

import gymnasium as gym
import numpy as np
import pytest

import simulator  # noqa: F401  (registers CartRecovery-v0)


@pytest.fixture(scope="session")
def sim_records():
    """2,000 (context, info) pairs from CartRecovery-v0 with a random sending policy."""
    env = gym.make("CartRecovery-v0", n_shoppers=2000, n_items=200)
    _, info = env.reset(seed=123)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(2000):
        out.append(info)
        env.step(int(rng.integers(0, 7)))
        _, info = env.reset()
    return out


@pytest.fixture(scope="session")
def sim_contexts(sim_records):
    return [info["context"] for info in sim_records]
