"""Checkout contexts drawn from the shopper simulator, for tests, benchmarks and profiling scripts.

>>> contexts = simulator_contexts(3, seed=0)
>>> len(contexts), sorted(contexts[0])[:2]
(3, ['cart', 'channels'])
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

import simulator  # noqa: F401  (registers the envs)


def simulator_contexts(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """The contexts of ``n`` consecutive ``CartRecovery-v0`` carts of simulator seed ``seed``.

    Cart ``i`` is answered with action ``i % 7`` before the next one is drawn, so the shoppers'
    histories hold every kind of contact.
    """
    env = gym.make("CartRecovery-v0")
    _, info = env.reset(seed=seed)
    contexts = []
    for i in range(n):
        contexts.append(info["context"])
        env.step(i % 7)
        _, info = env.reset()
    return contexts
