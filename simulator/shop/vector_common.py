"""What the two numpy-batched vector envs share: argument checks, spaces and record lookup.

:class:`~simulator.shop.vector_env.CartRecoveryVectorEnv` (one-step carts) and
:class:`~simulator.shop.sequence_vector_env.CartRecoverySequenceVectorEnv` (recovery flows)
check ``num_envs`` and a step's actions the same way, build their spaces the same way and
resolve an index into their lazily built context records the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from simulator.shop.constants import ACTION_NAMES


def check_num_envs(num_envs: object, owner: str) -> int:
    """``num_envs`` if it is an integer >= 1, else a ``ValueError`` naming ``owner``.

    >>> check_num_envs(4, "Env")
    4
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"{owner}: num_envs == {num_envs!r}, must be an integer >= 1")
    return num_envs


def set_spaces(env: VectorEnv, low: np.ndarray, high: np.ndarray) -> None:
    """Give ``env`` (``num_envs`` set) its action and observation spaces, single and batched."""
    env.single_action_space = spaces.Discrete(len(ACTION_NAMES))
    env.single_observation_space = spaces.Box(low, high, dtype=np.float32)
    env.action_space = batch_space(env.single_action_space, env.num_envs)
    env.observation_space = batch_space(env.single_observation_space, env.num_envs)


def check_actions(actions: Any, num_envs: int) -> np.ndarray:
    """One valid action index per env, as int64 (``ValueError`` naming the first bad one).

    >>> check_actions([0, 6], 2).tolist()
    [0, 6]
    """
    acts = np.asarray(actions)
    if acts.shape != (num_envs,) or not np.issubdtype(acts.dtype, np.integer):
        raise ValueError(
            f"actions has shape {acts.shape} and dtype {acts.dtype}, must be {num_envs} integers"
        )
    bad = np.flatnonzero((acts < 0) | (acts >= len(ACTION_NAMES)))
    if len(bad):
        raise ValueError(
            f"actions[{bad[0]}] == {acts[bad[0]]}, must be in [0, {len(ACTION_NAMES)})"
        )
    return acts.astype(np.int64)


def record_index(i: Any, n: int, of: str) -> int:
    """Index ``i`` (negative counts from the end) into ``n`` records; ``IndexError`` names ``of``.

    >>> record_index(-1, 3, "3 envs")
    2
    """
    j = int(i)
    if j < 0:
        j += n
    if not 0 <= j < n:
        raise IndexError(f"context index {i} out of range for {of}")
    return j
