"""Shared checks for the vectorised (batch) paths of the policies.

The single-context path is validated by :class:`policies.base.Policy`; these helpers give the
``(n, n_actions)`` paths the same guarantees (a boolean mask with an eligible action per row,
rows that are distributions with no mass on ineligible actions).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_mask_batch(eligible: np.ndarray, n_actions: int, n: int | None = None) -> np.ndarray:
    """``eligible`` as a ``(n, n_actions)`` bool array with at least one True per row."""
    mask = np.asarray(eligible, dtype=bool)
    if mask.ndim != 2 or mask.shape[1] != n_actions or (n is not None and mask.shape[0] != n):
        rows = "n" if n is None else str(n)
        raise ValueError(f"eligible has shape {mask.shape}, must be ({rows}, {n_actions})")
    empty = ~mask.any(axis=1)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise ValueError(f"eligible[{i}] has no True entry: at least 'none' must be eligible")
    return mask


def normalise_batch(scores: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    """Rows of non-negative ``scores`` zeroed off ``mask`` and scaled to sum to 1.

    A row with no mass on an eligible action becomes uniform over its eligible actions.
    """
    p = np.asarray(scores, dtype=np.float64)
    # NaN fails both comparisons, -inf the first, +inf the second
    if p.shape != mask.shape or (p.size and not (p.min() >= 0 and p.max() < np.inf)):
        raise ValueError(f"policy {name!r} returned invalid scores of shape {p.shape}")
    p = np.where(mask, p, 0.0)
    total = p.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    if empty.any():
        p[empty] = mask[empty]
        total[empty, 0] = mask[empty].sum(axis=1)
    return p / total


def one_hot_batch(best: np.ndarray, n_actions: int) -> np.ndarray:
    """``(n, n_actions)`` rows with all mass on ``best[i]``."""
    out = np.zeros((len(best), n_actions))
    out[np.arange(len(best)), best] = 1.0
    return out


def column_index(feature_names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Positions of ``wanted`` features among logged ``feature_names`` (``f_<name>`` accepted)."""
    names = [str(n) for n in feature_names]
    position = {n: i for i, n in enumerate(names)}
    position.update(
        {n[2:]: i for i, n in enumerate(names) if n.startswith("f_") and n[2:] not in position}
    )
    missing = [w for w in wanted if w not in position]
    if missing:
        raise ValueError(
            f"feature_names lacks {missing[:5]!r} (found {names[:5]!r}...), needed by the policy"
        )
    return [position[w] for w in wanted]
