"""Checks of a context's ``history``: counts, past orders (summarised) and past contacts."""

from __future__ import annotations

from typing import Any

from engine.context_checks import (
    _INF,
    _MAX,
    _MISSING,
    _NUMBER_TYPES,
    ContextError,
    ContextLimits,
    _check_bool,
    _check_finite,
    _check_int,
    _check_list,
    _check_mapping,
    _check_nonneg,
    _check_string,
    _fail,
)
from engine.parsed import NO_ORDERS, OrderSummary, summarise_orders
from engine.validation import check_number

__all__: list[str] = []

_HISTORY_COUNTS = ("sessions", "product_views", "carts_abandoned")


def _check_order_slow(i: int, order: Any, limits: ContextLimits) -> None:
    """Field-by-field check of one order, used to name the field once the fast path failed."""
    field = f"history.orders[{i}]"
    _check_mapping(field, order)
    _check_finite(f"{field}.timestamp", order.get("timestamp", _MISSING))
    items = order.get("items", _MISSING)
    _check_list(f"{field}.items", items, limits.max_order_items)
    for j, item in enumerate(items):
        _check_string(f"{field}.items[{j}]", item, limits.max_string)
    _check_nonneg(f"{field}.value", order.get("value", _MISSING))
    coupon = order.get("coupon_percent")
    if coupon is not None and not (type(coupon) in _NUMBER_TYPES and 0 <= coupon <= 100):
        try:
            check_number(coupon, field, low=0, high=100)
        except ValueError:
            raise _fail(f"{field}.coupon_percent", coupon, "None or a number in [0, 100]") from None
    recovered = order.get("recovered_by")
    if recovered is not None:
        _check_string(f"{field}.recovered_by", recovered, limits.max_string)


def _check_orders(orders: Any, limits: ContextLimits) -> OrderSummary:
    """Check ``history.orders`` and return their summary."""
    if type(orders) is not list or len(orders) > limits.max_history_events:
        _check_list("history.orders", orders, limits.max_history_events)
    max_string = limits.max_string
    max_items = limits.max_order_items
    numbers = _NUMBER_TYPES
    big = _MAX
    total = 0.0
    last = -_INF
    n_coupon = 0
    depth = 0.0
    all_items: list[str] = []
    # Fast path: plain dicts of plain values; any doubt goes to the slow, naming check. The
    # summary is gathered on the way.
    for order in orders:
        try:
            ts = order["timestamp"]
            items = order["items"]
            value = order["value"]
        except Exception:  # not subscriptable, missing key...: let the slow path name it
            break
        if (
            type(order) is not dict
            or type(ts) not in numbers
            or not -big <= ts <= big
            or type(items) is not list
            or len(items) > max_items
            or type(value) not in numbers
            or not 0 <= value <= big
        ):
            break
        coupon = order.get("coupon_percent")
        if coupon is not None:  # None and 0: no coupon was used
            if type(coupon) not in numbers or not 0 <= coupon <= 100:
                break
            if coupon:
                n_coupon += 1
                depth += coupon
        recovered = order.get("recovered_by")
        if recovered is not None and (
            type(recovered) is not str or not 0 < len(recovered) <= max_string
        ):
            break
        total += value
        if ts > last:
            last = ts
        all_items += items
    else:
        # the item ids of all orders in one pass
        for item in all_items:
            if type(item) is not str or not 0 < len(item) <= max_string:
                break
        else:
            if total <= big:
                return OrderSummary(len(orders), total, last, n_coupon, depth, all_items)
    for i, order in enumerate(orders):
        _check_order_slow(i, order, limits)
    summary = summarise_orders(orders)
    if not summary.total_value <= _MAX:
        raise ContextError(
            "history.orders",
            None,
            "history.orders values sum beyond the float range, must sum to a finite number",
            "values summing to inf",
        )
    return summary


def _check_contacts(contacts: Any, limits: ContextLimits) -> None:
    if type(contacts) is not list or len(contacts) > limits.max_history_events:
        _check_list("history.contacts", contacts, limits.max_history_events)
    max_string = limits.max_string
    numbers = _NUMBER_TYPES
    big = _MAX
    for contact in contacts:
        try:
            ts = contact["timestamp"]
            action = contact["action"]
            converted = contact["converted"]
        except Exception:  # not subscriptable, missing key...: let the slow path name it
            break
        if (
            type(contact) is not dict
            or type(ts) not in numbers
            or not -big <= ts <= big
            or type(action) is not str
            or not 0 < len(action) <= max_string
            or type(converted) is not bool
        ):
            break
    else:
        return
    for i, contact in enumerate(contacts):
        field = f"history.contacts[{i}]"
        _check_mapping(field, contact)
        _check_finite(f"{field}.timestamp", contact.get("timestamp", _MISSING))
        _check_string(f"{field}.action", contact.get("action", _MISSING), max_string)
        _check_bool(f"{field}.converted", contact.get("converted", _MISSING))


def _check_history(history: Any, limits: ContextLimits) -> OrderSummary:
    if type(history) is not dict:
        _check_mapping("history", history)
    get = history.get
    first_seen = get("first_seen")
    if first_seen is not None and (
        type(first_seen) not in _NUMBER_TYPES or not -_MAX <= first_seen <= _MAX
    ):
        _check_finite("history.first_seen", first_seen)
    max_count = limits.max_count
    sessions, views, abandoned = get("sessions"), get("product_views"), get("carts_abandoned")
    if (
        (sessions is not None and (type(sessions) is not int or not 0 <= sessions <= max_count))
        or (views is not None and (type(views) is not int or not 0 <= views <= max_count))
        or (
            abandoned is not None
            and (type(abandoned) is not int or not 0 <= abandoned <= max_count)
        )
    ):
        for name in _HISTORY_COUNTS:
            value = get(name)
            if value is not None:
                _check_int(f"history.{name}", value, 0, max_count)
    orders = get("orders")
    summary = NO_ORDERS
    if orders is not None and (type(orders) is not list or orders):  # an empty list is valid
        summary = _check_orders(orders, limits)
    contacts = get("contacts")
    if contacts is not None and (type(contacts) is not list or contacts):
        _check_contacts(contacts, limits)
    return summary
