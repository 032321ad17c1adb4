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
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.actions import CHANNELS, CHECKOUT_STEPS
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
    MISSING,
    check_bool,
    check_choice,
    check_integer,
    check_number,
    fail,
)

__all__ = [
    "NO_ORDERS",
    "ContextError",
    "ContextLimits",
    "OrderSummary",
    "ParsedContext",
    "summarise_orders",
    "validate_context",
]

logger = logging.getLogger(__name__)

_INF = math.inf
_MAX = sys.float_info.max  # "-_MAX <= x <= _MAX": finite, and an int that fits a float
_NUMBER_TYPES = (float, int)  # bool is excluded by exact type checks below
_MISSING = MISSING  # a field absent from its mapping: "<field> is missing, must be ..."

_HISTORY_COUNTS = ("sessions", "product_views", "carts_abandoned")


class ContextError(ValueError):
    """A context record that breaks the schema.

    Its message names the field and shows the value found; :attr:`reason` says the same without
    the value (safe to store: the value may be a user or item id).

    Attributes:
        field: dotted path of the offending field, e.g. ``"cart[2].price"``.
        value: the value found (``None`` when the field is missing).
        found: what was found, without its value: ``"missing"``, ``"int"``, ``"str of 300
            chars"``, ``"float nan"``...
    """

    def __init__(self, field: str, value: Any, message: str, found: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.found = found if found is not None else describe(value)

    def __reduce__(self):  # keep the exception picklable (multiprocessing, logging handlers)
        return (type(self), (self.field, self.value, self.args[0], self.found))

    @property
    def field_path(self) -> str:
        """:attr:`field` without list indices (``"cart[].price"``): a bounded set of keys."""
        return _INDEX.sub("[]", self.field)

    @property
    def reason(self) -> str:
        """The field path, what was found and what is required; never the value itself.

        >>> ContextError("cart[2].item_id", 42, "cart[2].item_id == 42, must be a non-empty string").reason
        'cart[].item_id: int found, must be a non-empty string'
        """
        message = str(self.args[0]) if self.args else ""
        _, sep, requirement = message.rpartition(", must ")
        return f"{self.field_path}: {self.found} found" + (f", must {requirement}" if sep else "")


_INDEX = re.compile(r"\[\d+\]")
_SIZED = (str, bytes, bytearray, list, tuple, dict)


def describe(value: Any) -> str:
    """What a value is, without the value: its type, the size of a str/bytes/container, and
    whether a float is nan or infinite (never the digits of a number: an id may be one).

    >>> describe("x" * 300), describe(float("nan")), describe(10**400), describe(7)
    ('str of 300 chars', 'float nan', 'int beyond the float range', 'int')
    """
    try:
        if value is _MISSING:
            return "missing"
        cls = type(value)
        name = str(cls.__name__)[:60]
        if cls in _SIZED:
            return f"{name} of {len(value)} {'chars' if cls is str else 'bytes' if cls in (bytes, bytearray) else 'entries'}"
        if cls is float and not math.isfinite(value):
            return f"float {value!r}"
        if cls is int and not -_MAX <= value <= _MAX:
            return "int beyond the float range"
        return name
    except Exception:  # a hostile metaclass
        return "object"


@dataclass(frozen=True)
class ContextLimits:
    """Size limits that protect ``decide`` from oversized input.

    Attributes:
        max_string: longest accepted string (ids, categories, device, action names).
        max_cart_lines: most lines in ``cart``.
        max_history_events: most entries in each of ``history.orders`` and ``history.contacts``.
        max_order_items: most item ids in one past order.
        max_count: largest accepted integer count (quantities, views, sessions).
    """

    max_string: int = 256
    max_cart_lines: int = 100
    max_history_events: int = 1_000
    max_order_items: int = 100
    max_count: int = 1_000_000_000

    def __post_init__(self) -> None:
        for name in (
            "max_string",
            "max_cart_lines",
            "max_history_events",
            "max_order_items",
            "max_count",
        ):
            value = check_integer(getattr(self, name), f"ContextLimits.{name}", low=1)
            object.__setattr__(self, name, value)


_DEFAULT_LIMITS = ContextLimits()


# ----------------------------------------------------------------------------------------------
# Failure formatting (slow path only)


def _fail(field: str, value: Any, requirement: str) -> ContextError:
    message = str(fail(value, field, requirement))
    return ContextError(field, None if value is _MISSING else value, message, describe(value))


def _shared(check: Callable[..., Any], field: str, value: Any, **bounds: Any) -> None:
    """Run a shared validator of :mod:`engine.validation`; its error becomes a ContextError."""
    try:
        check(value, field, **bounds)
    except ValueError as err:
        raise ContextError(
            field, None if value is _MISSING else value, str(err), describe(value)
        ) from None


# ----------------------------------------------------------------------------------------------
# Field checks. Each returns silently on the fast path and raises with a formatted message.


def _check_string(field: str, value: Any, max_len: int) -> None:
    if type(value) is str and 0 < len(value) <= max_len:
        return
    if type(value) is str and value:
        raise _fail(field, value, f"a string of at most {max_len} characters")
    raise _fail(field, value, "a non-empty string")


def _check_unicode(field: str, value: str) -> None:
    """A string that encodes as UTF-8 (no lone surrogate): it is hashed and stored."""
    try:
        value.encode("utf-8")
    except UnicodeError:
        raise _fail(field, value, "a string of valid Unicode (no lone surrogates)") from None


def _check_finite(field: str, value: Any) -> None:
    if type(value) in _NUMBER_TYPES and -_MAX <= value <= _MAX:  # as the fast path accepts it
        return
    _shared(check_number, field, value)


def _check_nonneg(field: str, value: Any) -> None:
    if type(value) in _NUMBER_TYPES and 0 <= value <= _MAX:
        return
    _shared(check_number, field, value, low=0)


def _check_int(field: str, value: Any, low: int, high: int | None = None) -> None:
    if type(value) is int and value >= low and (high is None or value <= high):
        return
    _shared(check_integer, field, value, low=low, high=high)


def _check_bool(field: str, value: Any) -> None:
    _shared(check_bool, field, value)


def _check_list(field: str, value: Any, max_len: int, non_empty: bool = False) -> None:
    if type(value) is list or isinstance(value, (list, tuple)):
        if len(value) > max_len:
            raise ContextError(
                field, value, f"{field} has {len(value)} entries, must have at most {max_len}"
            )
        if non_empty and not value:
            raise _fail(field, value, "a non-empty list")
        return
    raise _fail(field, value, "a list")


def _check_mapping(field: str, value: Any) -> None:
    if type(value) is dict or isinstance(value, Mapping):
        return
    raise _fail(field, value, "a dict")


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
    """Check the opt-ins; return them in :data:`~engine.actions.CHANNELS` order (the channel key)."""
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
                EMPTY,
                (),
                NO_ORDERS,
                recovery or EMPTY,
            )
        )
    orders = _check_history(history, limits)
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
            history.get("contacts") or (),
            orders,
            recovery or EMPTY,
        )
    )


def _check_recovery(recovery: Any, limits: ContextLimits) -> None:
    """The optional multi-touch fields: ``touch`` int >= 1, ``previous`` list of earlier touches."""
    touch = recovery.get("touch", _MISSING) if type(recovery) is dict else None
    previous = recovery.get("previous", ()) if type(recovery) is dict else None
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
