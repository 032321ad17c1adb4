"""The oracle: the best eligible action given the simulator's ground truth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def oracle_action(info: Mapping[str, Any]) -> int | np.ndarray:
    """Argmax of ``info["expected_reward"]`` among eligible actions (``info["action_mask"]``).

    Works on a single env's info (returns an int) and on a vector env's info (returns an array).

    Example:
        >>> import numpy as np
        >>> reward, mask = np.array([1.0, 3.0, 2.0]), np.array([1, 0, 1])
        >>> oracle_action({"expected_reward": reward, "action_mask": mask})
        2
    """
    if "expected_reward" not in info:
        raise ValueError("info has no 'expected_reward': pass the info dict of CartRecovery-v0")
    reward = np.asarray(info["expected_reward"], dtype=float)
    mask = np.asarray(info.get("action_mask", np.ones_like(reward)), dtype=bool)
    if mask.shape != reward.shape:
        raise ValueError(f"info['action_mask'] has shape {mask.shape}, expected {reward.shape}")
    best = np.where(mask, reward, -np.inf).argmax(axis=-1)
    return int(best) if best.ndim == 0 else best
