"""Public vocabulary shared by the simulator: action names, shopper types, channel rules."""

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
"""The seven recovery actions, in action-index order (DESIGN.md)."""

SHOPPER_TYPES: tuple[str, ...] = ("hesitant", "price_sensitive", "impulsive", "forgetful")
"""Hidden behaviour types, in type-index order."""

CHANNELS: tuple[str, ...] = ("email", "sms", "push")

ACTION_CHANNELS: dict[str, tuple[str, ...]] = {
    "none": (),
    "recommendation": ("email", "push"),
    "coupon_5": ("email", "sms", "push"),
    "coupon_10": ("email", "sms", "push"),
    "coupon_20": ("email", "sms", "push"),
    "time_limited_offer": ("sms", "push"),
    "recall_message": ("email", "sms"),
}
"""Channels through which each action can be delivered; an action is eligible when the shopper has
opted in to at least one of them (``none`` is always eligible)."""

COUPON_PERCENT: dict[str, int] = {"coupon_5": 5, "coupon_10": 10, "coupon_20": 20}

DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
