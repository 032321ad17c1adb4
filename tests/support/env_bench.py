"""Timed callables over the simulator's envs, shared by the simulator and sequence benchmarks."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from bench_utils import LARGE

import simulator  # noqa: F401  (registers the envs)


def single_cart() -> Callable[[], None]:
    """One ``CartRecovery-v0`` cart (``reset`` + ``step``) per call, after a warm-up of carts."""
    env = gym.make("CartRecovery-v0")
    env.reset(seed=0)
    counter = iter(range(10**12))

    def cart() -> None:
        env.reset()
        env.step(next(counter) % 7)

    for _ in range(2000 if LARGE else 50):
        cart()
    return cart


def vector_step(env_id: str, batch: int) -> Callable[[], None]:
    """One ``step`` of ``batch`` envs of the native vector env ``env_id`` per call."""
    envs = gym.make_vec(env_id, num_envs=batch, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    actions = np.arange(batch) % 7

    def step() -> None:
        envs.step(actions)

    for _ in range(5):
        step()
    return step
