"""The parsed context record: what validation reads from a context, for everything downstream.

:func:`engine.context.validate_context` checks a context record and returns one
:class:`ParsedContext`: the timestamp as a float, the cart lines with their value and units, the
channel opt-ins, the session and history sections, and the summary of the past orders
(:class:`OrderSummary`). The guardrails, the profile and CF features and the engine's payload read
that record instead of reading the raw dict again, so each value is parsed once per decision.

Callers that hold a valid record without having validated it get the same record from
:func:`parse_context` (no checks); the public functions that take a context accept either.

>>> ctx = {"user_id": "u1", "timestamp": 1767225600, "channels": {"sms": True},
...        "cart": [{"item_id": "i1", "price": 10.0, "quantity": 2},
...                 {"item_id": "i2", "price": 5.0, "quantity": 1}]}
>>> parsed = parse_context(ctx)
>>> parsed.timestamp, parsed.cart_value, parsed.cart_units, parsed.channel_key, parsed.orders.count
(1767225600.0, 25.0, 3, (None, True, None), 0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any, NamedTuple

from engine.actions import CHANNELS

__all__ = [
    "EMPTY",
    "NO_CHANNELS",
    "NO_ORDERS",
    "OrderSummary",
    "ParsedContext",
    "cart_totals",
    "new_parsed_context",
    "order_summary",
    "parse_context",
    "summarise_orders",
]

#: An empty, read-only section (a missing or ``None`` ``session``, ``history`` or ``channels``).
EMPTY: Mapping[str, Any] = MappingProxyType({})
#: The channel key of a context without opt-ins.
NO_CHANNELS: tuple[None, ...] = (None,) * len(CHANNELS)


class OrderSummary(NamedTuple):
    """What validation gathers from ``history.orders`` while checking them.

    The profile and CF features read it instead of walking the orders again.

    Attributes:
        count: number of past orders.
        total_value: sum of their values (added in order).
        last_timestamp: latest order timestamp (``-inf`` without orders).
        coupon_count: orders with a nonzero ``coupon_percent``.
        coupon_depth: sum of those coupon percents.
        items: item ids of all past orders, in order.
    """

    # the field shadows tuple.count on purpose: ``orders.count`` is the public name
    count: int  # type: ignore[assignment]
    total_value: float
    last_timestamp: float
    coupon_count: int
    coupon_depth: float
    items: tuple[str, ...] | list[str]


#: The summary of a context without past orders.
NO_ORDERS = OrderSummary(0, 0.0, -math.inf, 0, 0.0, ())


class ParsedContext(NamedTuple):
    """One valid context record, read once.

    Attributes:
        user_id: the shopper's id.
        timestamp: the context's time (unix seconds) as a float.
        cart: the cart lines.
        cart_value: sum of price x quantity over the cart lines (:func:`cart_totals`).
        cart_units: total quantity.
        channels: the channel opt-ins (:data:`EMPTY` when missing).
        channel_key: the opt-ins of :data:`engine.actions.CHANNELS` in that order (``None`` where
            not given): a hashable key of the channel section.
        session: the ``session`` section (:data:`EMPTY` when missing).
        history: the ``history`` section (:data:`EMPTY` when missing).
        contacts: ``history.contacts`` (empty when missing).
        orders: the :class:`OrderSummary` of ``history.orders``.
        recovery: the multi-touch ``recovery`` section (:data:`EMPTY` when missing).
    """

    user_id: str
    timestamp: float
    cart: Sequence[Mapping[str, Any]]
    cart_value: float
    cart_units: int
    channels: Mapping[str, Any]
    channel_key: tuple[Any, ...]
    session: Mapping[str, Any]
    history: Mapping[str, Any]
    contacts: Sequence[Mapping[str, Any]]
    orders: OrderSummary
    recovery: Mapping[str, Any]


#: ``new_parsed_context((user_id, timestamp, ...))``: a :class:`ParsedContext` from a tuple of its
#: fields in order, without the generated ``__new__``'s Python-level call (one per ``decide``).
new_parsed_context: Callable[[tuple[Any, ...]], ParsedContext] = partial(
    tuple.__new__, ParsedContext
)


def cart_totals(cart: Iterable[Mapping[str, Any]]) -> tuple[float, int]:
    """``(value, units)`` of valid cart lines: the sum of price x quantity, and of quantity.

    This is the one definition of a cart's value (the profile's ``cart_value_log``, the coupon
    budget's face values, the rule policy's threshold).

    >>> cart_totals([{"price": 2.5, "quantity": 2}, {"price": 1.0, "quantity": 1}])
    (6.0, 3)
    """
    value = 0.0
    units = 0
    for line in cart:
        quantity = line["quantity"]
        value += line["price"] * quantity
        units += quantity
    return float(value), int(units)


def summarise_orders(orders: Iterable[Mapping[str, Any]]) -> OrderSummary:
    """The :class:`OrderSummary` of valid orders, in one plain pass.

    Validation gathers the same on its fast path; it calls this after its slow one.
    """
    n = 0
    total_value = 0.0
    last = -math.inf
    n_coupon = 0
    depth = 0.0
    items: list[str] = []
    for order in orders:
        n += 1
        total_value += order["value"]
        ts = order["timestamp"]
        if ts > last:
            last = ts
        coupon = order.get("coupon_percent")
        if coupon:
            n_coupon += 1
            depth += coupon
        items += order["items"]
    return OrderSummary(n, total_value, last, n_coupon, depth, items)


def order_summary(ctx: Mapping[str, Any]) -> OrderSummary:
    """The :class:`OrderSummary` of a valid record's ``history.orders``."""
    history = ctx.get("history")
    orders = history.get("orders") if history else None
    return summarise_orders(orders) if orders else NO_ORDERS


def parse_context(ctx: Mapping[str, Any]) -> ParsedContext:
    """The :class:`ParsedContext` of a valid context record, without checking it.

    What :func:`engine.context.validate_context` returns for a record it accepts; for callers
    whose records are valid by construction (the simulator, batch training).
    """
    channels = ctx.get("channels") or EMPTY
    history = ctx.get("history") or EMPTY
    cart = ctx["cart"]
    value, units = cart_totals(cart)
    return new_parsed_context(
        (
            ctx["user_id"],
            float(ctx["timestamp"]),
            cart,
            value,
            units,
            channels,
            tuple(map(channels.get, CHANNELS)),
            ctx.get("session") or EMPTY,
            history,
            history.get("contacts") or (),
            order_summary(ctx),
            ctx.get("recovery") or EMPTY,
        )
    )
