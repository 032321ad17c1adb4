"""Summaries of the simulated shop's ground truth: who abandons, and what each action is worth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from simulator.shop.constants import ACTION_NAMES, SHOPPER_TYPES


def truth_table(
    carts: int,
    seed: int,
    config: Mapping[str, Any] | None = None,
    batch: int = 1024,
    progress: bool = True,
) -> pd.DataFrame:
    """Mean true expected profit of every action by shopper type, over ``carts`` simulated carts.

    Actions are drawn uniformly at random (the truth does not depend on the policy except through
    the shop's evolving state). Rows: the four types and ``all``; columns: ``carts``, ``share``,
    one column per action, ``oracle`` (best eligible action per cart) and ``best_action``.

    Example:
        >>> table = truth_table(2048, seed=0, config={"n_shoppers": 1000}, progress=False)
        >>> list(table.index)
        ['hesitant', 'price_sensitive', 'impulsive', 'forgetful', 'all']
    """
    if isinstance(carts, bool) or not isinstance(carts, int) or carts < 1:
        raise ValueError(f"carts == {carts!r}, must be a positive integer")
    batch = min(batch, carts)
    env = gym.make_vec(
        "CartRecovery-v0",
        num_envs=batch,
        vectorization_mode="vector_entry_point",
        **dict(config or {}),
    )
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    rewards, types, oracle = [], [], []
    steps = -(-carts // batch)
    for _ in tqdm(range(steps), desc="simulating carts", unit="batch", disable=not progress):
        er = info["expected_reward"]
        rewards.append(er)
        types.append(info["shopper_type"])
        oracle.append(np.where(info["action_mask"] > 0, er, -np.inf).max(axis=1))
        _, _, _, _, info = env.step(rng.integers(0, len(ACTION_NAMES), batch))
    er = np.concatenate(rewards)[:carts]
    ty = np.concatenate(types)[:carts]
    orc = np.concatenate(oracle)[:carts]
    frame = pd.DataFrame(er, columns=list(ACTION_NAMES))
    frame["oracle"] = orc
    frame["type"] = ty
    by_type = frame.groupby("type").mean().reindex(list(SHOPPER_TYPES))
    by_type.loc["all"] = frame.drop(columns="type").mean()
    counts = frame["type"].value_counts().reindex(list(SHOPPER_TYPES)).fillna(0)
    by_type.insert(0, "carts", [*counts.astype(int), carts])
    by_type.insert(1, "share", by_type["carts"] / carts)
    by_type["best_action"] = by_type[list(ACTION_NAMES)].idxmax(axis=1)
    return by_type
