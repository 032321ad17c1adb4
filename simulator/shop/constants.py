"""Public vocabulary shared by the simulator: action names, shopper types, channel rules."""

from __future__ import annotations

# The action and channel vocabulary and the day length are defined once, by the engine.
from engine.actions import (  # noqa: F401  (re-exported)
    ACTION_CHANNELS,
    ACTION_NAMES,
    CHANNELS,
    CHECKOUT_STEPS,
    COUPON_PERCENT,
    DAY,
)

SHOPPER_TYPES: tuple[str, ...] = ("hesitant", "price_sensitive", "impulsive", "forgetful")
"""Hidden behaviour types, in type-index order."""

DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
