"""The default action catalogue: names, channels, costs and what checkout needs to act.

Times are Unix seconds throughout (context timestamps, offer expiry); :data:`DAY` converts days.
"""

from __future__ import annotations

ACTION_NAMES: tuple[str, ...] = (
    "none",
    "recommendation",
    "coupon_5",
    "coupon_10",
    "coupon_20",
    "time_limited_offer",
    "recall_message",
)

CHANNELS: tuple[str, ...] = ("email", "sms", "push")
"""The contact channels a context's ``channels`` opt-ins name."""

CHECKOUT_STEPS: tuple[str, ...] = ("cart", "shipping", "payment")
"""Values of a context's ``session.checkout_step`` (the furthest step reached), in order."""

ACTION_CHANNELS: dict[str, tuple[str, ...]] = {
    "none": (),
    "recommendation": ("email", "push"),
    "coupon_5": ("email", "sms", "push"),
    "coupon_10": ("email", "sms", "push"),
    "coupon_20": ("email", "sms", "push"),
    "time_limited_offer": ("sms", "push"),
    "recall_message": ("email", "sms"),
}
"""Channels each action can be delivered through, in order of preference."""

COUPON_PERCENT: dict[str, int] = {"coupon_5": 5, "coupon_10": 10, "coupon_20": 20}
OFFER_HOURS = 2.0
"""How long a time-limited offer lasts."""

DAY = 86_400.0
"""Seconds per day."""
