"""Validation of the context record at the engine boundary.

The context record is described in ``docs/context-schema.md``. :func:`validate_context` checks
it once, on every ``decide``, so that everything downstream (guardrails, profiles, CF, feature
builder) can trust types and ranges. It is written as straight-line code on purpose: a normal
context is checked in a few microseconds. Error messages are only formatted when a check fails.
What it reads on the way (the timestamp, the cart's value, the channel opt-ins, the summary of
the past orders...) it returns as one :class:`~engine.parsed.ParsedContext`, which the
downstream steps take instead of reading the record again.

>>> ctx = {"user_id": "u1", "timestamp": 1767225600.0,
...        "cart": [{"item_id": "i1", "price": 10.0, "quantity": 2}]}
>>> parsed = validate_context(ctx)
>>> parsed.cart_value, parsed.orders.count        # valid: its cart value, its (no) past orders
(20.0, 0)
>>> ctx["cart"][0]["price"] = float("nan")
>>> try:
...     validate_context(ctx)
... except ContextError as err:
...     print(err.field, "|", err)
cart[0].price | cart[0].price == nan, must be a finite number >= 0
"""

from __future__ import annotations

import logging
from typing import Any

from engine.actions import CHANNELS, CHECKOUT_STEPS
from engine.context_checks import (
    _DEFAULT_LIMITS,
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
    _check_unicode,
    _shared,
    describe,
)
from engine.context_history import _check_history
from engine.parsed import (
    EMPTY,
    NO_CHANNELS,
    NO_ORDERS,
    OrderSummary,
    ParsedContext,
    cart_totals,
    new_parsed_context,
    summarise_orders,
)
from engine.validation import (
    check_choice,
)

__all__ = [
    "NO_ORDERS",
    "ContextError",
    "ContextLimits",
    "OrderSummary",
    "ParsedContext",
    "describe",
    "summarise_orders",
    "validate_context",
]

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# Sections


def _check_line_slow(i: int, line: Any, limits: ContextLimits) -> None:
    """Field-by-field check of one cart line, used to name the field once the fast path failed."""
    _check_mapping(f"cart[{i}]", line)
    _check_string(f"cart[{i}].item_id", line.get("item_id", _MISSING), limits.max_string)
    _check_nonneg(f"cart[{i}].price", line.get("price", _MISSING))
    _check_int(f"cart[{i}].quantity", line.get("quantity", _MISSING), 1, limits.max_count)
    category = line.get("category")
    if category is not None:
        _check_string(f"cart[{i}].category", category, limits.max_string)


def _check_cart(cart: Any, limits: ContextLimits) -> None:
    if type(cart) is not list or not cart or len(cart) > limits.max_cart_lines:
        _check_list("cart", cart, limits.max_cart_lines, non_empty=True)
    max_string = limits.max_string
    max_count = limits.max_count
    numbers = _NUMBER_TYPES
    # Fast path: plain dicts of plain values; any doubt goes to the slow, naming check.
    for line in cart:
        if type(line) is not dict:
            break
        try:
            item_id = line["item_id"]
            price = line["price"]
            quantity = line["quantity"]
        except KeyError:  # let the slow path name it
            break
        category = line.get("category")
        if (
            type(item_id) is not str
            or not 0 < len(item_id) <= max_string
            or type(price) not in numbers
            or not 0 <= price <= _MAX
            or type(quantity) is not int
            or not 1 <= quantity <= max_count
            or (
                category is not None
                and (type(category) is not str or not 0 < len(category) <= max_string)
            )
        ):
            break
    else:
        return
    for i, line in enumerate(cart):
        _check_line_slow(i, line, limits)


def _check_session(session: Any, limits: ContextLimits) -> None:
    if type(session) is not dict:
        _check_mapping("session", session)
    get = session.get
    device = get("device")
    if device is not None and (type(device) is not str or not 0 < len(device) <= limits.max_string):
        _check_string("session.device", device, limits.max_string)
    hour = get("hour")
    if hour is not None and (type(hour) is not int or not 0 <= hour <= 23):
        _check_int("session.hour", hour, 0, 23)
    max_count = limits.max_count
    # the counts and durations, unrolled (a loop over the names costs more than the checks)
    views = get("product_views")
    if views is not None and (type(views) is not int or not 0 <= views <= max_count):
        _check_int("session.product_views", views, 0, max_count)
    views = get("shipping_page_views")
    if views is not None and (type(views) is not int or not 0 <= views <= max_count):
        _check_int("session.shipping_page_views", views, 0, max_count)
    numbers = _NUMBER_TYPES
    value = get("session_seconds")
    if value is not None and (type(value) not in numbers or not 0 <= value <= _MAX):
        _check_nonneg("session.session_seconds", value)
    value = get("minutes_cart_to_abandon")
    if value is not None and (type(value) not in numbers or not 0 <= value <= _MAX):
        _check_nonneg("session.minutes_cart_to_abandon", value)
    value = get("minutes_since_abandon")
    if value is not None and (type(value) not in numbers or not 0 <= value <= _MAX):
        _check_nonneg("session.minutes_since_abandon", value)
    count = get("cart_sessions")
    if count is not None and (type(count) is not int or not 1 <= count <= max_count):
        _check_int("session.cart_sessions", count, 1, max_count)
    step = get("checkout_step")
    if step is not None and (type(step) is not str or step not in CHECKOUT_STEPS):
        _shared(check_choice, "session.checkout_step", step, choices=CHECKOUT_STEPS)


def _check_channels(channels: Any) -> tuple[Any, ...]:
    """Check the opt-ins; return them in :data:`~engine.actions.CHANNELS` order (channel key)."""
    if type(channels) is not dict:
        _check_mapping("channels", channels)
    get = channels.get
    email, sms, push = get("email"), get("sms"), get("push")
    if (
        (email is not None and type(email) is not bool)
        or (sms is not None and type(sms) is not bool)
        or (push is not None and type(push) is not bool)
    ):
        for name in CHANNELS:
            value = get(name)
            if value is not None:
                _check_bool(f"channels.{name}", value)
    return (email, sms, push)


def validate_context(ctx: Any, limits: ContextLimits = _DEFAULT_LIMITS) -> ParsedContext:
    """Check a context record against the schema; raise :class:`ContextError` if it breaks it.

    Required: ``user_id`` (non-empty str), ``timestamp`` (finite number) and ``cart`` (non-empty
    list of lines with ``item_id`` str, ``price`` finite >= 0, ``quantity`` int >= 1, optional
    ``category`` str). ``session``, ``channels`` and ``history`` may be missing or ``None``; when
    present each of their known fields is type- and range-checked (a missing field is allowed).
    Booleans are never accepted as numbers; numpy scalars are. Unknown keys are ignored.

    Args:
        ctx: the context record.
        limits: size limits (strings, cart lines, history events).

    Returns:
        The record read once, as a :class:`~engine.parsed.ParsedContext` (equal to what
        :func:`~engine.parsed.parse_context` gives). Its ``orders`` summary is gathered while
        checking the orders (:data:`NO_ORDERS` without orders; after the slow, field-by-field
        check that numpy scalars or mappings other than dict need, by :func:`summarise_orders`).

    Raises:
        ContextError: naming the dotted field path and the value found.
    """
    if type(ctx) is not dict:
        _check_mapping("context", ctx)
    max_string = limits.max_string
    get = ctx.get
    user_id = get("user_id", _MISSING)
    if type(user_id) is not str or not 0 < len(user_id) <= max_string or not user_id.isascii():
        _check_string("user_id", user_id, max_string)
        _check_unicode("user_id", user_id)
    ts = get("timestamp", _MISSING)
    if type(ts) not in _NUMBER_TYPES or not -_MAX <= ts <= _MAX:
        _check_finite("timestamp", ts)
    cart = get("cart", _MISSING)
    _check_cart(cart, limits)
    try:
        value, units = cart_totals(cart)
    except OverflowError:  # int prices whose sum does not fit a float
        value = _INF
    if not value <= _MAX:
        raise ContextError(
            "cart",
            None,
            "cart value (price x quantity summed) is beyond the float range, "
            "must be a finite number",
            "a cart value of inf",
        )
    session = get("session")
    if session is not None:
        _check_session(session, limits)
    channels = get("channels")
    channel_key = NO_CHANNELS if channels is None else _check_channels(channels)
    recovery = get("recovery")
    if recovery is not None:
        _check_recovery(recovery, limits)
    history = get("history")
    if history is None:
        history, contacts, orders = EMPTY, (), NO_ORDERS
    else:
        orders = _check_history(history, limits)
        contacts = history.get("contacts") or ()
    return new_parsed_context(
        (
            user_id,
            float(ts),
            cart,
            value,
            units,
            channels or EMPTY,
            channel_key,
            session or EMPTY,
            history or EMPTY,
            contacts,
            orders,
            recovery or EMPTY,
        )
    )


def _check_recovery(recovery: Any, limits: ContextLimits) -> None:
    """The optional multi-touch fields: ``touch`` int >= 1, ``previous`` list of earlier touches."""
    # raw input, checked below (Any: the type() tests do not narrow for mypy)
    touch: Any = recovery.get("touch", _MISSING) if type(recovery) is dict else None
    previous: Any = recovery.get("previous", ()) if type(recovery) is dict else None
    if (
        type(touch) is int
        and 1 <= touch <= limits.max_count
        and type(previous) in (list, tuple)
        and len(previous) < touch
        and all(
            type(p) is dict
            and type(p.get("action")) is str
            and 0 < len(p["action"]) <= limits.max_string
            and type(p.get("minutes_after_abandon")) in _NUMBER_TYPES
            and 0 <= p["minutes_after_abandon"] < _INF
            and type(p.get("opened")) is bool
            and type(p.get("clicked")) is bool
            for p in previous
        )
    ):
        return
    _check_mapping("recovery", recovery)
    _check_int("recovery.touch", recovery.get("touch", _MISSING), 1, limits.max_count)
    previous = recovery.get("previous", [])
    _check_list("recovery.previous", previous, recovery["touch"] - 1)
    for i, p in enumerate(previous):
        field = f"recovery.previous[{i}]"
        _check_mapping(field, p)
        _check_string(f"{field}.action", p.get("action", _MISSING), limits.max_string)
        _check_nonneg(f"{field}.minutes_after_abandon", p.get("minutes_after_abandon", _MISSING))
        _check_bool(f"{field}.opened", p.get("opened", _MISSING))
        _check_bool(f"{field}.clicked", p.get("clicked", _MISSING))
