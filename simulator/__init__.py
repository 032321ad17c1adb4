"""Gymnasium shopper simulator for cart recovery.

Importing this package registers ``CartRecovery-v0`` (one abandoned cart per episode, one
decision) and ``CartRecoverySequence-v0`` (one cart per episode, a flow of touches), both with a
native vector entry point.

Example:
    >>> import gymnasium as gym
    >>> import simulator
    >>> env = gym.make("CartRecovery-v0", n_shoppers=500)
    >>> obs, info = env.reset(seed=0)
    >>> sorted(info)
    ['action_mask', 'context', 'expected_reward', 'p_return', 'shopper_type']
    >>> action = simulator.oracle_action(info)
    >>> obs, reward, terminated, truncated, info = env.step(action)
    >>> terminated
    True
"""

from __future__ import annotations

import gymnasium

from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_CHANNELS, ACTION_NAMES, SHOPPER_TYPES
from simulator.shop.env import CartRecoveryEnv
from simulator.shop.oracle import oracle_action
from simulator.shop.sequence_env import CartRecoverySequenceEnv
from simulator.shop.sequence_model import SequenceConfig
from simulator.shop.vector_env import CartRecoveryVectorEnv, ContextBatch

ENV_ID = "CartRecovery-v0"
SEQUENCE_ENV_ID = "CartRecoverySequence-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=ENV_ID,
        entry_point="simulator.shop.env:CartRecoveryEnv",
        vector_entry_point="simulator.shop.vector_env:CartRecoveryVectorEnv",
    )
if SEQUENCE_ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=SEQUENCE_ENV_ID,
        entry_point="simulator.shop.sequence_env:CartRecoverySequenceEnv",
        vector_entry_point="simulator.shop.sequence_vector_env:CartRecoverySequenceVectorEnv",
    )

__all__ = [
    "ACTION_CHANNELS",
    "ACTION_NAMES",
    "ENV_ID",
    "SEQUENCE_ENV_ID",
    "SHOPPER_TYPES",
    "CartRecoveryEnv",
    "CartRecoverySequenceEnv",
    "CartRecoveryVectorEnv",
    "ContextBatch",
    "SequenceConfig",
    "SimConfig",
    "oracle_action",
]
