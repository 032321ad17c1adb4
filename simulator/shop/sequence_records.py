"""A flow as the outside sees it: observations, each touch's context, what an ended flow leaves.

The observation layout, the context record of a touch, and what an ended flow writes to the
shoppers' state.

Shared by :class:`~simulator.shop.sequence_sim.FlowSimulator` (the vector path) and the scalar
one-flow path (:mod:`simulator.shop.sequence_one`), so both record flows the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.shop.carts import OBS_HIGH, OBS_LOW, OBS_NAMES
from simulator.shop.constants import ACTION_NAMES, SHOPPER_TYPES
from simulator.shop.response import DISCOUNT
from simulator.shop.sequence_model import MAX_TOUCHES
from simulator.shop.world import ShopWorld

__all__ = [
    "SEQ_OBS_HIGH",
    "SEQ_OBS_LOW",
    "SEQ_OBS_NAMES",
    "flow_context",
    "flow_observations",
    "type_names",
    "write_flows",
]

SEQ_OBS_NAMES: tuple[str, ...] = (
    *OBS_NAMES,
    "touch",
    "previous_contacts",
    "last_opened",
    "last_clicked",
    "coupon_held",
)
SEQ_OBS_LOW = np.concatenate([OBS_LOW, np.zeros(5, dtype=np.float32)])
SEQ_OBS_HIGH = np.concatenate(
    [OBS_HIGH, np.array([MAX_TOUCHES - 1, MAX_TOUCHES, 1, 1, 1], dtype=np.float32)]
)
_TYPE_NAMES = np.array(SHOPPER_TYPES, dtype=object)
_SINCE = OBS_NAMES.index("log_minutes_since_abandon")
_NONE = ACTION_NAMES.index("none")


def flow_observations(
    cart_obs: np.ndarray,
    minutes_now: np.ndarray,
    touch: np.ndarray,
    actions: np.ndarray,
    opened: np.ndarray,
    clicked: np.ndarray,
) -> np.ndarray:
    """Observations (float32, :data:`SEQ_OBS_NAMES`) of flows at their touch ``touch`` (0-based).

    ``cart_obs`` are the carts' single-step observations (clipped to ``OBS_LOW``/``OBS_HIGH``
    already, as :class:`~simulator.shop.world.ShopWorld` makes them), ``minutes_now`` the
    minutes since abandonment at this touch; ``actions``, ``opened``, ``clicked`` (flows,
    touches) the flows' earlier touches (entries from ``touch`` on are ignored).
    """
    m, k = len(touch), touch
    n_cart = len(OBS_NAMES)
    obs = np.empty((m, len(SEQ_OBS_NAMES)), dtype=np.float32)
    obs[:, :n_cart] = cart_obs
    obs[:, _SINCE] = np.log1p(minutes_now)
    before = np.arange(actions.shape[1])[None, :] < k[:, None]
    last = np.maximum(k - 1, 0)
    rows = np.arange(m)
    has_last = k > 0
    obs[:, n_cart] = k
    obs[:, n_cart + 1] = ((actions != _NONE) & before).sum(axis=1)
    obs[:, n_cart + 2] = has_last & opened[rows, last]
    obs[:, n_cart + 3] = has_last & clicked[rows, last]
    obs[:, n_cart + 4] = np.where(before, DISCOUNT[actions], 0.0).max(axis=1) * 5.0
    # the cart's columns are clipped already (ShopWorld's observations): clip the written ones
    since = obs[:, _SINCE]
    np.clip(since, SEQ_OBS_LOW[_SINCE], SEQ_OBS_HIGH[_SINCE], out=since)
    flow = obs[:, n_cart:]
    np.clip(flow, SEQ_OBS_LOW[n_cart:], SEQ_OBS_HIGH[n_cart:], out=flow)
    return obs


def flow_context(
    base: dict[str, Any],
    abandon_time: float,
    tau: list[float],
    actions: list[int],
    opened: list[bool],
    clicked: list[bool],
) -> dict[str, Any]:
    """The record of a flow's touch ``len(actions) + 1`` from its cart's record ``base``."""
    k = len(actions)
    session = dict(base["session"])
    session["minutes_since_abandon"] = float(tau[k])
    previous = [
        {
            "action": ACTION_NAMES[a],
            "minutes_after_abandon": float(tau[j]),
            "opened": bool(o),
            "clicked": bool(c),
        }
        for j, (a, o, c) in enumerate(zip(actions, opened, clicked, strict=True))
    ]
    return {
        **base,
        "timestamp": float(abandon_time + tau[k] * 60.0),
        "session": session,
        "recovery": {"touch": k + 1, "previous": previous},
    }


def write_flows(
    world: ShopWorld,
    shopper: np.ndarray,
    type_index: np.ndarray,
    abandon_time: np.ndarray,
    tau: np.ndarray,
    value: np.ndarray,
    actions: np.ndarray,
    last_k: np.ndarray,
    converted: np.ndarray,
    prompted: np.ndarray,
    delay_hours: np.ndarray,
    items: np.ndarray | None,
) -> None:
    """Write ended flows (simultaneous rows) to the shoppers' state.

    Each flow adds its abandoned cart, every touch sent and, when converted, its order (``items``
    of the converted rows, in order). Unsubscribes are the caller's (:meth:`ShopWorld.opt_out`).
    """
    st = world.shoppers
    np.add.at(st.carts_abandoned, shopper, 1)
    K = actions.shape[1]
    taken = np.arange(K)[None, :] <= last_k[:, None]
    r, j = np.nonzero(taken)
    times = abandon_time[r] + tau[r, j] * 60.0
    conv = prompted[r] & (j == last_k[r])
    st.record_contacts(shopper[r], times, type_index[r], actions[r, j], conv)
    if converted.any():
        c = np.flatnonzero(converted)
        held = np.where(taken[c], DISCOUNT[actions[c]], 0.0).max(axis=1)
        coupon = np.round(held * 100).astype(np.int64)
        when = abandon_time[c] + (tau[c, last_k[c]] / 60.0 + delay_hours[c]) * 3600.0
        by = np.where(prompted[c], actions[c, last_k[c]], -1)
        st.add_orders(shopper[c], when, items, value[c], coupon, by)


def type_names(type_index: np.ndarray) -> np.ndarray:
    """Shopper type names of type indices (object array)."""
    return _TYPE_NAMES[type_index]
