"""What the checkout service receives with a decision: how to carry out the chosen action.

Example:
    >>> from engine.guardrails import GuardrailConfig, Guardrails
    >>> from engine.context import validate_context
    >>> ctx = validate_context({"user_id": "u1", "timestamp": 0.0,
    ...     "cart": [{"item_id": "i1", "price": 40.0, "quantity": 1}],
    ...     "channels": {"email": True, "sms": False, "push": False}})
    >>> action_payload("coupon_10", ctx, Guardrails(GuardrailConfig()), None, None, 5)
    {'channel': 'email', 'coupon_percent': 10}
"""

from __future__ import annotations

from typing import Any

from engine.actions import COUPON_PERCENT, OFFER_HOURS
from engine.cf import CFModel, ShopperItems
from engine.guardrails import Guardrails
from engine.parsed import ParsedContext

__all__ = ["action_payload"]


def action_payload(
    action: str,
    ctx: ParsedContext,
    guardrails: Guardrails,
    cf: CFModel | None,
    cf_items: ShopperItems | None,
    recommend_k: int,
) -> dict[str, Any]:
    """The payload of ``action`` for ``ctx``: its channel and the action's own details.

    ``none`` has an empty payload; coupons carry their percentage, the time-limited offer its
    expiry, a recommendation the top ``recommend_k`` items of ``cf`` (none without a CF model).
    """
    if action == "none":
        return {}
    payload: dict[str, Any] = {"channel": guardrails.channel_for(action, ctx)}
    if action in COUPON_PERCENT:
        payload["coupon_percent"] = COUPON_PERCENT[action]
    elif action == "time_limited_offer":
        payload["offer"] = "free_shipping"
        payload["expires_at"] = ctx.timestamp + OFFER_HOURS * 3600.0
    elif action == "recommendation":
        payload["items"] = cf.recommend(ctx, recommend_k, cf_items) if cf is not None else []
    return payload
