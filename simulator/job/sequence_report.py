"""The multi-touch section of ``cartwise run``: flows and learners against the DP optimum.

Values are true expected profit per cart (USD): each policy's flows are scored by
:func:`simulator.training.sequence_loop.run_sequence_policy` (last 20% of flows, each run's own
shop); the incremental value of touch 2 and touch 3 is exact, from the DP tables of a fresh
shop's first carts: the optimum allowed 1, 2 or 3 touches, the myopic optimum, and 1, 2 or 3
reminders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from policies import make_policy
from simulator.shop.sequence_model import (
    SequenceConfig,
    TouchTables,
    fixed_flow_probabilities,
    policy_value,
    solve,
)
from simulator.shop.sequence_vector_env import CartRecoverySequenceVectorEnv
from simulator.training.sequence_loop import run_sequence_policy

_REMINDER = 6  # recall_message in ACTION_NAMES order


def touch_increments(seed: int, shop: Mapping[str, Any], carts: int = 2_048) -> pd.DataFrame:
    """Exact value per cart of the optimum and of reminder flows with 1, 2 and 3 touches.

    Beside them the *myopic optimum*: each touch's best action for that touch's expected reward
    (with the hidden shopper known), i.e. the best a per-touch bandit could do; its distance to
    the optimum is all that looking ahead can add.
    """
    env = CartRecoverySequenceVectorEnv(1, config=dict(shop), block_size=carts)
    env.reset(seed=seed)
    sim = env.sim
    params, mask = sim.block_inputs()
    n, K = len(params), sim.K
    none = policy_value(
        solve(params, mask, sim.config, sim.seq),
        fixed_flow_probabilities([np.zeros(n, dtype=np.int64)] * K, mask),
    ).mean()
    rows = []
    for touches in range(1, K + 1):
        tables = solve(params, mask, sim.config, sim.seq, restrict_touches=touches)
        best = np.where(mask, tables.q[0][:, 0], -np.inf).max(axis=1).mean()
        flow = [np.full(n, _REMINDER if k < touches else 0) for k in range(K)]
        reminders = policy_value(tables, fixed_flow_probabilities(flow, mask)).mean()
        myopic = policy_value(tables, _myopic_probabilities(tables, mask, touches)).mean()
        rows.append(
            {
                "touches": touches,
                "optimum": best,
                "myopic_optimum": myopic,
                "reminders": reminders,
                "none": none,
            }
        )
    frame = pd.DataFrame(rows)
    frame["optimum_increment"] = frame["optimum"].diff().fillna(frame["optimum"] - none)
    frame["reminders_increment"] = frame["reminders"].diff().fillna(frame["reminders"] - none)
    return frame


def _myopic_probabilities(tables: TouchTables, mask: np.ndarray, touches: int) -> list[np.ndarray]:
    """The myopic optimum's probabilities for :func:`policy_value`.

    At each of the first ``touches`` touches the action with the best expected reward of that
    touch alone (it knows the hidden shopper), ``none`` after.
    """
    eye = np.eye(mask.shape[1])
    out = []
    for k, immediate in enumerate(tables.immediate):
        best = np.where(mask[:, None, :], immediate, -np.inf).argmax(axis=2)
        out.append(eye[best if k < touches else np.zeros_like(best)])
    return out


def sequence_scoreboard(
    policies: Sequence[str], carts: int, seed: int, shop: Mapping[str, Any]
) -> pd.DataFrame:
    """One row per policy of the sequence scoreboard.

    Columns: kind, value, optimum and none on its carts, share of the optimal gain, unsubscribe
    rate, coupon spend and contacts per cart.
    """
    rows = []
    for name in policies:
        kwargs = {"n_touches": SequenceConfig().n_touches} if name == "seq:fqi" else {}
        r = run_sequence_policy(make_policy(name, seed=seed, **kwargs), carts, seed, dict(shop))
        rows.append(
            {
                "policy": name,
                "kind": r.kind,
                "value": r.value,
                "optimal": r.optimal,
                "none": r.none,
                "share_of_optimal_gain": r.share_of_optimal_gain,
                "unsubscribe_rate": r.unsubscribe_rate,
                "coupon_cost": r.coupon_cost,
                "contacts_per_cart": r.contacts_per_cart,
                "conversion": r.conversion,
            }
        )
    return pd.DataFrame(rows)
