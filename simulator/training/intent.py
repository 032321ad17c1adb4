"""Decisions by purchase intent: coupon share and profit per cart in deciles of the true ``p0``.

Uplift modelling's point about intent: carts that would be bought anyway ("sure things", the top
deciles of the true unprompted-return probability ``info["p_return"]``) gain nothing from a
coupon, which then only gives margin away; a policy that sees intent should send them fewer
coupons than a hand rule does, and earn at least as much on them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from engine.actions import ACTION_NAMES, COUPON_PERCENT
from engine.validation import as_float_array

__all__ = ["COUPON_COLUMNS", "decile_table", "intent_deciles"]

COUPON_COLUMNS = np.array([a in COUPON_PERCENT for a in ACTION_NAMES])
"""Which action columns give a coupon, in ``ACTION_NAMES`` order."""


def intent_deciles(p_return: np.ndarray) -> np.ndarray:
    """Decile (0 = lowest intent .. 9 = highest) of each cart's true ``p_return``, by rank.

    >>> intent_deciles(np.linspace(0.01, 0.4, 20)).tolist()[:4]
    [0, 0, 1, 1]
    """
    p = as_float_array(p_return, "p_return", 1)
    if len(p) == 0:
        raise ValueError("p_return is empty, must hold at least one cart")
    ranks = np.empty(len(p), dtype=np.int64)
    ranks[np.argsort(p, kind="stable")] = np.arange(len(p))
    return ranks * 10 // len(p)


def decile_table(
    p_return: np.ndarray, truth: np.ndarray, actions: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """Per intent decile: mean ``p_return``, and each named policy's coupon share and profit.

    For every policy, the share of carts it gave a coupon (``<name>_coupon``) and its true
    expected profit per cart (``<name>_profit``).

    Args:
        p_return: (n,) the carts' true unprompted-return probabilities.
        truth: (n, n_actions) true expected profit of every action (``info["expected_reward"]``).
        actions: policy name -> (n,) chosen action indices on these carts.

    Returns:
        One row per decile (``decile`` 1 to 10, lowest intent first).

    >>> truth = np.tile(np.arange(7.0), (20, 1))
    >>> t = decile_table(np.linspace(0, 1, 20), truth, {"a": np.full(20, 3)})
    >>> t[["a_coupon", "a_profit"]].iloc[0].tolist()
    [1.0, 3.0]
    """
    deciles = intent_deciles(p_return)
    truth = as_float_array(truth, "truth", 2)
    if truth.shape != (len(deciles), len(ACTION_NAMES)):
        raise ValueError(
            f"truth has shape {truth.shape}, must be ({len(deciles)}, {len(ACTION_NAMES)})"
        )
    rows = np.arange(len(deciles))
    frame = {"decile": deciles + 1, "p_return": np.asarray(p_return, dtype=np.float64)}
    for name, chosen in actions.items():
        chosen = np.asarray(chosen)
        if chosen.shape != deciles.shape or not np.issubdtype(chosen.dtype, np.integer):
            raise ValueError(
                f"actions[{name!r}] has shape {chosen.shape} and dtype {chosen.dtype}, "
                f"must be {len(deciles)} action indices"
            )
        frame[f"{name}_coupon"] = COUPON_COLUMNS[chosen].astype(np.float64)
        frame[f"{name}_profit"] = truth[rows, chosen]
    return pd.DataFrame(frame).groupby("decile").mean().reset_index()
