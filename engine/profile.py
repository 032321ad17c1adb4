"""Behaviour profile: named numeric features of a shopper from one context record.

The profile summarises the session in which the cart was abandoned and the shopper's history
(orders, past recovery contacts) into :data:`PROFILE_FEATURES`. Counts and durations are on a
``log1p`` scale, rates are smoothed with a Beta prior so they exist for shoppers with no history.
The context is assumed valid: the :class:`~engine.parsed.ParsedContext` that
:func:`engine.context.validate_context` returns, or a valid record (parsed here); missing optional
fields take the documented neutral defaults.

>>> ctx = {"user_id": "u1", "timestamp": 86400.0 * 30,
...        "cart": [{"item_id": "i1", "price": 19.0, "quantity": 1}],
...        "session": {"device": "mobile", "hour": 6}}
>>> profile = behaviour_profile(ctx)
>>> profile["device_mobile"], round(profile["hour_sin"], 3), round(profile["cart_value_log"], 3)
(1.0, 1.0, 2.996)
>>> profile["contact_conversion"] == CONTACT_PRIOR_RATE
True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from engine.actions import DAY
from engine.parsed import OrderSummary, ParsedContext, parse_context

__all__ = [
    "ACTION_FAMILIES",
    "CONTACT_PRIOR_RATE",
    "COUPON_PRIOR_SHARE",
    "NO_EVENT_DAYS",
    "PRIOR_STRENGTH",
    "PROFILE_FEATURES",
    "action_family",
    "behaviour_profile",
    "profile_matrix",
    "profile_values",
]

logger = logging.getLogger(__name__)

PROFILE_FEATURES: tuple[str, ...] = (
    "session_views_log",  # log1p(session.product_views)
    "lifetime_views_log",  # log1p(history.product_views)
    "lifetime_sessions_log",  # log1p(history.sessions)
    "carts_abandoned_log",  # log1p(history.carts_abandoned)
    "cart_to_abandon_log",  # log1p(session.minutes_cart_to_abandon)
    "since_abandon_log",  # log1p(session.minutes_since_abandon)
    "shipping_views_log",  # log1p(session.shipping_page_views)
    "sessions_per_order_log",  # log1p(history.sessions / (orders + 1))
    "recency_days_log",  # log1p(days since last order), NO_EVENT_DAYS when none
    "frequency_log",  # log1p(number of orders)
    "monetary_log",  # log1p(mean order value), 0 when no orders
    "coupon_share",  # share of orders with a coupon, Beta-smoothed toward COUPON_PRIOR_SHARE
    "discount_depth",  # mean coupon_percent / 100 over orders that used a coupon, 0 when none
    "contacts_log",  # log1p(number of past recovery contacts)
    "contact_conversion",  # conversion rate of past contacts, smoothed toward CONTACT_PRIOR_RATE
    "conversion_reminder",  # per action family, smoothed toward the shopper's overall rate
    "conversion_coupon",
    "conversion_offer",
    "conversion_recommendation",
    "contact_days_log",  # log1p(days since last contact), NO_EVENT_DAYS when none
    "device_mobile",
    "device_desktop",
    "device_tablet",
    "hour_sin",  # sin(2 pi hour / 24); 0 with hour_cos when the hour is unknown
    "hour_cos",
    "cart_value_log",  # log1p(sum of price * quantity)
    "cart_size_log",  # log1p(total quantity)
    "checkout_shipping",  # session.checkout_step reached shipping (1 / 0)
    "checkout_payment",  # session.checkout_step reached payment (1 / 0)
    "cart_sessions_log",  # log(session.cart_sessions), 0 when unknown
    "session_minutes_log",  # log1p(session.session_seconds / 60), 0 when unknown
    "tenure_days_log",  # log1p(days since history.first_seen), 0 when unknown
    "basket_ratio_log",  # log(cart value / mean order value), clipped to [-5, 5]; 0 without orders
)

#: Action name -> family used for the per-family conversion rates.
ACTION_FAMILIES: dict[str, str] = {
    "recall_message": "reminder",
    "coupon_5": "coupon",
    "coupon_10": "coupon",
    "coupon_20": "coupon",
    "time_limited_offer": "offer",
    "recommendation": "recommendation",
}
_FAMILY_INDEX = {"reminder": 0, "coupon": 1, "offer": 2, "recommendation": 3}

CONTACT_PRIOR_RATE = 0.05  # prior conversion rate of a recovery contact (Klaviyo: 3-5%)
COUPON_PRIOR_SHARE = 0.2  # prior share of orders placed with a coupon
PRIOR_STRENGTH = 2.0  # pseudo-observations behind each prior
NO_EVENT_DAYS = 365.0  # "days since" used when there was no such event

_MAX_MONEY = 1e12  # caps keep logs finite for absurd but schema-valid input
_MAX_DAYS = 1e6
_LOG_NO_EVENT = math.log1p(NO_EVENT_DAYS)
_DEFAULT_CART_TO_ABANDON = 5.0  # minutes, used when the session does not say
_DEFAULT_SINCE_ABANDON = 30.0
_HOUR_SIN = tuple(math.sin(2.0 * math.pi * h / 24.0) for h in range(24))
_HOUR_COS = tuple(math.cos(2.0 * math.pi * h / 24.0) for h in range(24))
_DEVICES: dict[Any, tuple[float, float, float]] = {
    "mobile": (1.0, 0.0, 0.0),
    "desktop": (0.0, 1.0, 0.0),
    "tablet": (0.0, 0.0, 1.0),
}
_NO_DEVICE = (0.0, 0.0, 0.0)
#: session.checkout_step -> (checkout_shipping, checkout_payment); "cart" or unknown: (0, 0)
_STEPS: dict[Any, tuple[float, float]] = {"shipping": (1.0, 0.0), "payment": (0.0, 1.0)}
_NO_STEP = (0.0, 0.0)
_MAX_BASKET_LOG = 5.0
_log = math.log
_log1p = math.log1p


def action_family(action: str) -> str | None:
    """Family of a recovery action name (``None`` for ``"none"`` and unknown names).

    >>> action_family("coupon_10"), action_family("recall_message"), action_family("none")
    ('coupon', 'reminder', None)
    """
    family = ACTION_FAMILIES.get(action)
    if family is None and action.startswith("coupon"):
        return "coupon"
    return family


def _order_features(history: Mapping[str, Any], now: float, orders: OrderSummary) -> list[float]:
    """sessions_per_order .. discount_depth (6 values)."""
    n, total_value, last, n_coupon, depth, _ = orders
    sessions = history.get("sessions") or 0
    if n:
        days = (now - last) / DAY
        recency = _log1p(min(days, _MAX_DAYS)) if days > 0.0 else 0.0
        monetary = _log1p(min(total_value / n, _MAX_MONEY))
    else:
        recency = _LOG_NO_EVENT
        monetary = 0.0
    return [
        _log1p(sessions / (n + 1)),
        recency,
        _log1p(n),
        monetary,
        (n_coupon + PRIOR_STRENGTH * COUPON_PRIOR_SHARE) / (n + PRIOR_STRENGTH),
        depth / (100.0 * n_coupon) if n_coupon else 0.0,
    ]


def _contact_features(contacts: Sequence[Mapping[str, Any]], now: float) -> list[float]:
    """contacts_log .. contact_days_log (7 values)."""
    n = len(contacts)
    if not n:
        rate = CONTACT_PRIOR_RATE
        return [0.0, rate, rate, rate, rate, rate, _LOG_NO_EVENT]
    sent = [0, 0, 0, 0]
    won = [0, 0, 0, 0]
    converted = 0
    last = -math.inf
    families = _FAMILY_INDEX
    for contact in contacts:
        ts = contact["timestamp"]
        if ts > last:
            last = ts
        action = contact["action"]
        family = ACTION_FAMILIES.get(action)
        if family is None:
            family = action_family(action)
        hit = contact["converted"]
        if hit:
            converted += 1
        if family is not None:
            k = families[family]
            sent[k] += 1
            if hit:
                won[k] += 1
    rate = (converted + PRIOR_STRENGTH * CONTACT_PRIOR_RATE) / (n + PRIOR_STRENGTH)
    prior = PRIOR_STRENGTH * rate
    days = (now - last) / DAY
    return [
        _log1p(n),
        rate,
        (won[0] + prior) / (sent[0] + PRIOR_STRENGTH),
        (won[1] + prior) / (sent[1] + PRIOR_STRENGTH),
        (won[2] + prior) / (sent[2] + PRIOR_STRENGTH),
        (won[3] + prior) / (sent[3] + PRIOR_STRENGTH),
        _log1p(min(days, _MAX_DAYS)) if days > 0.0 else 0.0,
    ]


def profile_values(ctx: ParsedContext | Mapping[str, Any]) -> list[float]:
    """Profile of a validated context as a list of floats in :data:`PROFILE_FEATURES` order.

    This is the fast path used by the feature builder; see :func:`behaviour_profile` for a dict.
    ``ctx``: the :class:`~engine.parsed.ParsedContext` that
    :func:`~engine.context.validate_context` returned, or a valid record (parsed here).
    """
    if type(ctx) is not ParsedContext:
        ctx = parse_context(cast("Mapping[str, Any]", ctx))
    now = ctx.timestamp
    session = ctx.session
    history = ctx.history
    s_get = session.get
    h_get = history.get

    hour = s_get("hour")
    cart_to_abandon = s_get("minutes_cart_to_abandon")
    since_abandon = s_get("minutes_since_abandon")

    out = [
        _log1p(s_get("product_views") or 0),
        _log1p(h_get("product_views") or 0),
        _log1p(h_get("sessions") or 0),
        _log1p(h_get("carts_abandoned") or 0),
        _log1p(_DEFAULT_CART_TO_ABANDON if cart_to_abandon is None else cart_to_abandon),
        _log1p(_DEFAULT_SINCE_ABANDON if since_abandon is None else since_abandon),
        _log1p(s_get("shipping_page_views") or 0),
    ]
    out += _order_features(history, now, ctx.orders)
    out += _contact_features(ctx.contacts, now)
    out += _DEVICES.get(s_get("device"), _NO_DEVICE)
    if hour is None:
        out += (0.0, 0.0)
    else:
        out += (_HOUR_SIN[hour], _HOUR_COS[hour])
    out.append(_log1p(min(ctx.cart_value, _MAX_MONEY)))
    out.append(_log1p(ctx.cart_units))
    out += _intent_features(ctx, s_get, h_get("first_seen"))
    return out


def _intent_features(
    ctx: ParsedContext, s_get: Callable[[str], Any], first_seen: float | None
) -> tuple[float, float, float, float, float, float]:
    """checkout_shipping .. basket_ratio_log (6 values): what checkout sees of purchase intent."""
    shipping, payment = _STEPS.get(s_get("checkout_step"), _NO_STEP)
    cart_sessions = s_get("cart_sessions")
    seconds = s_get("session_seconds")
    days = 0.0 if first_seen is None else (ctx.timestamp - first_seen) / DAY
    n_orders, total_value = ctx.orders.count, ctx.orders.total_value
    value = ctx.cart_value
    if n_orders and value > 0.0 and total_value > 0.0:
        ratio = _log(min(value, _MAX_MONEY)) - _log(min(total_value / n_orders, _MAX_MONEY))
        basket = max(-_MAX_BASKET_LOG, min(ratio, _MAX_BASKET_LOG))
    else:
        basket = 0.0
    return (
        shipping,
        payment,
        _log(cart_sessions) if cart_sessions else 0.0,
        _log1p(min(seconds, _MAX_MONEY) / 60.0) if seconds else 0.0,
        _log1p(min(days, _MAX_DAYS)) if days > 0.0 else 0.0,
        basket,
    )


def behaviour_profile(ctx: ParsedContext | Mapping[str, Any]) -> dict[str, float]:
    """The profile of a validated context as a dict, keys in PROFILE_FEATURES order."""
    return dict(zip(PROFILE_FEATURES, map(float, profile_values(ctx)), strict=True))


def profile_matrix(contexts: Iterable[ParsedContext | Mapping[str, Any]]) -> np.ndarray:
    """Profiles of many validated contexts, shape ``(n, len(PROFILE_FEATURES))``, float64."""
    rows = [profile_values(ctx) for ctx in contexts]
    if not rows:
        return np.empty((0, len(PROFILE_FEATURES)), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)
