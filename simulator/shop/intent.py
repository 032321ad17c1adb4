"""What checkout sees of a cart's purchase intent: the draws, and each cart's intent shift.

:func:`draw_intent_observables` draws, per abandoned cart, the furthest checkout step reached, the
sessions in which the shopper came back to the cart and the noise no observer sees; they come from
their own random stream (:func:`intent_rng`), so adding them leaves every other draw of the shop
as it was. :func:`cart_intent` turns them, with the session and the shopper's state, into the
intent shift of :func:`simulator.shop.response.intent_shift` (what ``ShopWorld.evaluate`` stores
in ``CartBatch.intent`` and passes to :func:`~simulator.shop.response.cart_response`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.shop.constants import DAY
from simulator.shop.response import intent_shift

__all__ = ["cart_intent", "draw_intent_observables", "intent_rng"]

# Furthest checkout step reached (cart, shipping, payment) by type (hesitant, price_sensitive,
# impulsive, forgetful): price-sensitive shoppers leave once they see the shipping cost, forgetful
# ones often get as far as payment before they are interrupted.
_CHECKOUT_STEP_P = np.array(
    [[0.60, 0.28, 0.12], [0.45, 0.40, 0.15], [0.60, 0.22, 0.18], [0.50, 0.25, 0.25]]
)
_STEP_CDF = np.cumsum(_CHECKOUT_STEP_P, axis=1)[:, :2]
# Chance that each later session of the shopper came back to this cart, by type.
_CART_RETURN_P = np.array([0.55, 0.45, 0.25, 0.35])


def intent_rng(rng: np.random.Generator) -> np.random.Generator:
    """The intent draws' own generator, spawned from the shop's (whose stream it leaves alone)."""
    return rng.spawn(1)[0]


def draw_intent_observables(
    rng: np.random.Generator, type_index: np.ndarray, sessions_since: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(checkout_step, cart_sessions, intent_noise)`` of ``n`` carts.

    Args:
        rng: the intent stream (:func:`intent_rng`).
        type_index: each cart's shopper type.
        sessions_since: sessions since the shopper's previous abandoned cart (>= 1).

    Returns:
        The furthest checkout step (0 cart, 1 shipping, 2 payment), the sessions with this cart
        (1 to ``sessions_since``), and a standard normal per cart.
    """
    n = len(type_index)
    step = (rng.random(n)[:, None] > _STEP_CDF[type_index]).sum(axis=1)
    cart_sessions = 1 + rng.binomial(sessions_since - 1, _CART_RETURN_P[type_index])
    return step.astype(np.int64), cart_sessions.astype(np.int64), rng.standard_normal(n)


def cart_intent(batch: Any, rows: Any, state: Any, device: np.ndarray) -> np.ndarray:
    """Intent shift of ``batch[rows]`` given the shoppers' state now.

    Args:
        batch: a ``CartBatch`` (checkout step, cart sessions, noise, session, value, time).
        rows: the rows to evaluate (index array or slice).
        state: the ``ShopperState`` (orders so far, their value, first seen).
        device: device index of each row's shopper.

    Returns:
        :func:`~simulator.shop.response.intent_shift` of each row.
    """
    s = batch.shopper[rows]
    n_orders = state.n_orders[s]
    value = batch.value[rows]
    usual = np.where(n_orders > 0, state.order_value_sum[s] / np.maximum(n_orders, 1), value)
    return intent_shift(
        batch.checkout_step[rows],
        batch.cart_sessions[rows],
        batch.session_seconds[rows] / 60.0,
        (batch.time[rows] - state.first_seen[s]) / DAY,
        value / np.maximum(usual, 1e-9),
        device,
        batch.hour[rows],
        batch.intent_noise[rows],
    )
