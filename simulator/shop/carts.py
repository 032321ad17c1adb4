"""A batch of abandoned carts, and what an agent and checkout see of each cart.

:class:`CartView` builds the observation vector (``OBS_NAMES``) and the context record checkout
sends (docs/context-schema.md) from a :class:`CartBatch`, the population and the shopper state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.shop.catalog import Catalog
from simulator.shop.constants import CHANNELS, CHECKOUT_STEPS, DAY, DEVICES
from simulator.shop.population import Population
from simulator.shop.shoppers import MAX_LINES, ShopperState

MAX_DIRECT = 2
"""Orders completed without abandonment drawn per cart (since the shopper's previous cart)."""
OBS_NAMES: tuple[str, ...] = (
    "log_cart_value",
    "cart_lines",
    "log_session_views",
    "log_minutes_cart_to_abandon",
    "log_minutes_since_abandon",
    "shipping_page_views",
    "hour_sin",
    "hour_cos",
    "device_mobile",
    "device_desktop",
    "device_tablet",
    "log_sessions",
    "log_product_views",
    "log_orders",
    "coupon_order_share",
    "mean_discount_depth",
    "recency",
    "log_contacts",
    "contact_conversion_rate",
    "email_opt_in",
    "sms_opt_in",
    "push_opt_in",
    "log_sessions_per_order",
    "log_carts_abandoned",
)
OBS_LOW = np.array([0, 1, 0, 0, 0, 0, -1, -1] + [0] * 16, dtype=np.float32)
OBS_HIGH = np.array(
    [12, MAX_LINES, 8, 10, 10, 20, 1, 1, 1, 1, 1, 12, 14, 8, 1, 1, 1, 8, 1, 1, 1, 1, 8, 10],
    dtype=np.float32,
)


@dataclass
class CartBatch:
    """A batch of abandoned carts (arrays of length ``n``)."""

    shopper: np.ndarray
    time: np.ndarray
    items: np.ndarray  # (n, MAX_LINES) item index, -1 = no line
    quantity: np.ndarray  # (n, MAX_LINES)
    value: np.ndarray
    margin: np.ndarray
    hour: np.ndarray
    views: np.ndarray
    session_seconds: np.ndarray
    minutes_to_abandon: np.ndarray
    minutes_since_abandon: np.ndarray
    shipping_views: np.ndarray
    sessions_since: np.ndarray
    views_since: np.ndarray
    direct_items: np.ndarray  # (n, MAX_DIRECT, 2) item index, -1 = none
    direct_coupon: np.ndarray  # (n, MAX_DIRECT) coupon percent used on direct orders
    direct_time: np.ndarray  # (n, MAX_DIRECT) timestamps
    outcome_u: np.ndarray  # uniforms that decide purchases
    purchase_delay_hours: np.ndarray
    checkout_step: np.ndarray  # furthest checkout step reached: 0 cart, 1 shipping, 2 payment
    cart_sessions: np.ndarray  # sessions in which the shopper had this cart (>= 1)
    intent_noise: np.ndarray  # standard normal: the part of the cart's intent nobody observes
    # Filled by arrive/evaluate:
    type_index: np.ndarray = field(default=None)  # type at arrival
    history_head: np.ndarray = field(default=None)  # (n, 2) newest order/contact event at arrival
    counters: np.ndarray = field(default=None)  # (n, 3) sessions, views, carts abandoned at arrival
    expected_reward: np.ndarray = field(default=None)
    purchase_probability: np.ndarray = field(default=None)
    cost_if_bought: np.ndarray = field(default=None)
    contact_cost: np.ndarray = field(default=None)
    action_mask: np.ndarray = field(default=None)
    observation: np.ndarray = field(default=None)
    intent: np.ndarray = field(default=None)  # intent shift (simulator.shop.response.intent_shift)

    def __len__(self) -> int:
        return len(self.shopper)


class CartView:
    """Observations and context records of carts, read from the population and shopper state."""

    def __init__(
        self, population: Population, state: ShopperState, catalog: Catalog, history_cap: int
    ) -> None:
        self._population, self._state, self._history_cap = population, state, history_cap
        self._device_one_hot = np.eye(len(DEVICES), dtype=np.float32)[population.device]
        self._item_ids = catalog.item_ids
        self._cat_of_item = [catalog.category_names[c] for c in catalog.category]
        self._price = catalog.price.tolist()

    def observe(self, batch: CartBatch, rows: Any, s: np.ndarray, t_now: np.ndarray) -> np.ndarray:
        """Observation vectors (float32, clipped to ``OBS_LOW``/``OBS_HIGH``) of ``batch[rows]``.

        ``s`` are the rows' shoppers and ``t_now`` their decision times.
        """
        pop, st = self._population, self._state
        n_orders = st.n_orders[s]
        hour = batch.hour[rows] * (2 * np.pi / 24)
        recency = np.minimum((t_now - st.last_order_time[s]) / DAY, 365) / 365
        sessions, contacts, coupons = st.sessions[s], st.n_contacts[s], st.coupon_orders[s]
        columns = (
            np.log1p(batch.value[rows]),
            (batch.items[rows] >= 0).sum(axis=1),
            np.log1p(batch.views[rows]),
            np.log1p(batch.minutes_to_abandon[rows]),
            np.log1p(batch.minutes_since_abandon[rows]),
            batch.shipping_views[rows],
            np.sin(hour),
            np.cos(hour),
            self._device_one_hot[s],
            np.log1p(sessions),
            np.log1p(st.views[s]),
            np.log1p(n_orders),
            coupons / np.maximum(n_orders, 1),
            st.discount_sum[s] / np.maximum(coupons, 1) / 20.0,
            recency,
            np.log1p(contacts),
            (st.n_converted[s] + 0.5) / (contacts + 5.0),
            pop.channels[s],
            np.log1p(sessions / (n_orders + 1.0)),
            np.log1p(st.carts_abandoned[s]),
        )
        obs = np.empty((len(s), len(OBS_NAMES)), dtype=np.float32)
        k = 0
        for column in columns:  # write straight into float32, no float64 intermediate
            width = 1 if column.ndim == 1 else column.shape[1]
            obs[:, k : k + width] = column if width > 1 else column[:, None]
            k += width
        return np.clip(obs, OBS_LOW, OBS_HIGH, out=obs)

    def context(self, batch: CartBatch, i: int) -> dict[str, Any]:
        """The raw record checkout would send for cart ``i`` (see docs/context-schema.md).

        It shows the shopper's history as snapshotted when the batch arrived
        (``batch.history_head``, ``batch.counters``), so events recorded since never leak into it.
        """
        s = int(batch.shopper[i])
        pop, st = self._population, self._state
        item_ids, cats, price = self._item_ids, self._cat_of_item, self._price
        cart = []
        for item, q in zip(batch.items[i].tolist(), batch.quantity[i].tolist(), strict=True):
            if item < 0:
                break
            cart.append(
                {
                    "item_id": item_ids[item],
                    "category": cats[item],
                    "price": price[item],
                    "quantity": q,
                }
            )
        sessions, views, abandoned = batch.counters[i].tolist()
        t_now = float(batch.time[i])
        order_head, contact_head = batch.history_head[i].tolist()
        cap = self._history_cap
        return {
            "user_id": pop.user_ids[s],
            "timestamp": t_now,
            "cart": cart,
            "session": {
                "device": DEVICES[pop.device[s]],
                "hour": int(batch.hour[i]),
                "product_views": int(batch.views[i]),
                "session_seconds": float(batch.session_seconds[i]),
                "minutes_cart_to_abandon": float(batch.minutes_to_abandon[i]),
                "minutes_since_abandon": float(batch.minutes_since_abandon[i]),
                "shipping_page_views": int(batch.shipping_views[i]),
                "checkout_step": CHECKOUT_STEPS[batch.checkout_step[i]],
                "cart_sessions": int(batch.cart_sessions[i]),
            },
            "channels": dict(zip(CHANNELS, pop.channels[s].tolist(), strict=True)),
            "history": {
                "first_seen": float(st.first_seen[s]),
                "sessions": sessions,
                "product_views": views,
                "carts_abandoned": abandoned,
                "orders": st.recent_orders.records(s, order_head, t_now, cap),
                "contacts": st.recent_contacts.records(s, contact_head, t_now, cap),
            },
        }
