"""Tests of engine.parsed: the record validation returns, read once for every downstream step."""

from __future__ import annotations

import math

import context_factory as factory
import numpy as np
import pytest

from engine.actions import ACTION_NAMES
from engine.context import validate_context
from engine.guardrails import GuardrailConfig, Guardrails
from engine.parsed import EMPTY, NO_CHANNELS, NO_ORDERS, ParsedContext, cart_totals, parse_context
from engine.profile import PROFILE_FEATURES, profile_values
from policies.rule import cart_value

WORLD = factory.make_world(seed=5, n_users=80, n_items=60)
CONTEXTS = factory.make_contexts(WORLD, seed=9)[:300] + list(factory.edge_contexts(WORLD).values())


def _numpy_scalars(value):
    if isinstance(value, dict):
        return {k: _numpy_scalars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numpy_scalars(v) for v in value]
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, (int, float)):
        return np.float64(value) if isinstance(value, float) else np.int64(value)
    return value


def test_validation_returns_what_parse_context_reads():
    """validate_context's record (fast and slow paths) equals parse_context's for valid records."""
    for ctx in CONTEXTS:
        parsed = parse_context(ctx)
        assert validate_context(ctx) == parsed
        for other in (factory.as_read_only(ctx), _numpy_scalars(ctx)):
            got = validate_context(other)
            assert got[:2] + got[3:6] + (tuple(got.channel_key), dict(got.channels)) + got[7:8] + (
                got.orders[:5],
            ) == parsed[:2] + parsed[3:6] + (parsed.channel_key, dict(parsed.channels)) + parsed[
                7:8
            ] + (parsed.orders[:5],)


def test_fields_against_the_record():
    for ctx in CONTEXTS:
        parsed = validate_context(ctx)
        history = ctx.get("history") or {}
        assert parsed.user_id == ctx["user_id"] and parsed.cart is ctx["cart"]
        assert type(parsed.timestamp) is float and parsed.timestamp == ctx["timestamp"]
        value = math.fsum(line["price"] * line["quantity"] for line in ctx["cart"])
        assert parsed.cart_value == pytest.approx(value, rel=1e-12)
        assert parsed.cart_units == sum(line["quantity"] for line in ctx["cart"])
        channels = ctx.get("channels") or {}
        assert parsed.channel_key == (
            channels.get("email"),
            channels.get("sms"),
            channels.get("push"),
        )
        assert list(parsed.contacts) == list(history.get("contacts") or [])
        assert parsed.orders.count == len(history.get("orders") or [])


def test_missing_sections_read_as_empty():
    parsed = validate_context(factory.minimal_context())
    assert (parsed.channels, parsed.session, parsed.history) == (EMPTY, EMPTY, EMPTY)
    assert (parsed.channel_key, parsed.contacts, parsed.orders) == (NO_CHANNELS, (), NO_ORDERS)
    assert (
        isinstance(parsed, ParsedContext) and parsed.cart_value == 10.0 and parsed.cart_units == 1
    )
    with pytest.raises(TypeError):
        EMPTY["x"] = 1  # the shared empty section is read-only


def test_cart_value_is_one_figure_for_profile_budget_and_rule():
    """The profile's cart_value_log, the coupon budget and the rule policy see the same value."""
    ctx = factory.minimal_context()
    ctx["cart"] = [
        {"item_id": "a", "price": 19.99, "quantity": 3},
        {"item_id": "b", "price": 0.1, "quantity": 7},
    ]
    ctx["channels"] = {"email": True}
    value, units = cart_totals(ctx["cart"])
    assert value == 19.99 * 3 + 0.1 * 7 and units == 10
    assert cart_value(ctx) == value
    profile = dict(zip(PROFILE_FEATURES, profile_values(validate_context(ctx)), strict=True))
    assert profile["cart_value_log"] == math.log1p(value)
    coupon_20 = ACTION_NAMES.index("coupon_20")
    # the budget admits a 20% coupon exactly when its face value fits
    for budget, admitted in ((0.2 * value, True), (0.2 * value * (1 - 1e-9), False)):
        guard = Guardrails(GuardrailConfig(daily_coupon_budget=budget, max_contacts=None))
        assert guard.eligible(validate_context(ctx), "u")[coupon_20] is admitted
        assert guard.eligible(ctx, "u")[coupon_20] is admitted  # a raw record is parsed the same
    guard = Guardrails(GuardrailConfig(daily_coupon_budget=100.0, max_contacts=None))
    guard.commit(validate_context(ctx), "u", "coupon_20")
    assert guard.state()["budget_spent"] == 0.2 * value


def test_downstream_functions_take_the_raw_record_too():
    """Callers that did not validate get the same results from the raw record."""
    for ctx in CONTEXTS[:100]:
        parsed = validate_context(ctx)
        assert profile_values(ctx) == profile_values(parsed)
        guard_a, guard_b = Guardrails(), Guardrails()
        assert guard_a.eligible(ctx, "u") == guard_b.eligible(parsed, "u")
        for action in ACTION_NAMES[1:]:
            assert guard_a.channel_for(action, ctx) == guard_b.channel_for(action, parsed)
