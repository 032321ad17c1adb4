"""Public vocabulary shared by the simulator: action names, shopper types, channel rules."""

from __future__ import annotations

# The action vocabulary (names, delivery channels, coupon percents) is defined once, by the engine.
from engine.actions import ACTION_CHANNELS, ACTION_NAMES, COUPON_PERCENT  # noqa: F401  (re-exported)

SHOPPER_TYPES: tuple[str, ...] = ("hesitant", "price_sensitive", "impulsive", "forgetful")
"""Hidden behaviour types, in type-index order."""

CHANNELS: tuple[str, ...] = ("email", "sms", "push")

DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
