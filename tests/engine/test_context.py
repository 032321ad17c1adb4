"""Tests of engine.context: schema validation at the decide boundary."""

from __future__ import annotations

import contextlib
import copy
import math
import pickle

import context_factory as factory
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.context import (
    NO_ORDERS,
    ContextError,
    ContextLimits,
    summarise_orders,
    validate_context,
)

WORLD = factory.make_world(seed=3, n_users=60, n_items=80)


def _base_context():
    """A valid context with 3 cart lines, 3 past orders and 2 past contacts (the same each call)."""
    rng = np.random.default_rng(7)
    base = factory.make_context(WORLD, rng, 1, n_orders=3, n_contacts=2)
    base["cart"] = [factory._cart_line(WORLD, j, rng) for j in range(3)]
    return base


@pytest.fixture()
def ctx():
    return _base_context()


def test_synthetic_and_edge_contexts_are_valid():
    for context in factory.make_contexts(WORLD, seed=1):
        validate_context(context)
    for context in factory.edge_contexts(WORLD).values():
        validate_context(context)  # every named corner case is schema-valid


def test_exact_message_field_and_value_for_nan_price(ctx):
    ctx["cart"][2]["price"] = float("nan")
    with pytest.raises(ContextError) as info:
        validate_context(ctx)
    err = info.value
    assert str(err) == "cart[2].price == nan, must be a finite number >= 0"
    assert err.field == "cart[2].price"
    assert math.isnan(err.value)
    assert isinstance(err, ValueError)


def _set(ctx, path, value):
    """Set (or delete, for value is DELETE) a dotted/indexed path like 'history.orders[1].value'."""
    parts = path.replace("[", ".[").split(".")
    node = ctx
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    key = int(last[1:-1]) if last.startswith("[") else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value


class _Delete:
    """Sentinel: remove the field (a stable repr keeps test ids identical across xdist workers)."""

    def __repr__(self) -> str:
        return "<delete>"


DELETE = _Delete()

BAD_CASES = [
    # (path to change, new value, expected .field, fragment of the message)
    ("user_id", DELETE, "user_id", "user_id is missing"),
    ("user_id", 42, "user_id", "non-empty string"),
    ("user_id", "", "user_id", "non-empty string"),
    ("user_id", "x" * 257, "user_id", "at most 256 characters"),
    ("timestamp", float("inf"), "timestamp", "finite number"),
    ("timestamp", float("nan"), "timestamp", "finite number"),
    ("timestamp", "1767225600", "timestamp", "finite number"),
    ("timestamp", True, "timestamp", "finite number"),
    ("timestamp", None, "timestamp", "finite number"),
    ("cart", [], "cart", "non-empty list"),
    ("cart", DELETE, "cart", "cart is missing"),
    ("cart", "i1", "cart", "a list"),
    ("cart", [{"item_id": "a", "price": 1.0, "quantity": 1}] * 101, "cart", "at most 100"),
    ("cart[1]", "i0001", "cart[1]", "a dict"),
    ("cart[0].item_id", 17, "cart[0].item_id", "non-empty string"),
    ("cart[0].item_id", DELETE, "cart[0].item_id", "missing"),
    ("cart[0].price", -0.01, "cart[0].price", ">= 0"),
    ("cart[0].price", True, "cart[0].price", "finite number >= 0"),
    ("cart[0].price", "9.99", "cart[0].price", "finite number >= 0"),
    ("cart[1].quantity", 0, "cart[1].quantity", "an int in [1, 1000000000]"),
    ("cart[1].quantity", 1.0, "cart[1].quantity", "an int"),
    ("cart[1].quantity", True, "cart[1].quantity", "an int"),
    ("cart[1].quantity", 10**10, "cart[1].quantity", "an int"),
    ("cart[2].category", 3, "cart[2].category", "string"),
    ("session", "mobile", "session", "a dict"),
    ("session.hour", 24, "session.hour", "an int in [0, 23]"),
    ("session.hour", -1, "session.hour", "[0, 23]"),
    ("session.hour", 21.0, "session.hour", "an int"),
    ("session.device", 1, "session.device", "string"),
    ("session.product_views", -1, "session.product_views", "an int"),
    ("session.shipping_page_views", False, "session.shipping_page_views", "an int"),
    ("session.session_seconds", float("inf"), "session.session_seconds", "finite number >= 0"),
    ("session.minutes_since_abandon", "5", "session.minutes_since_abandon", ">= 0"),
    ("session.minutes_cart_to_abandon", -2.0, "session.minutes_cart_to_abandon", ">= 0"),
    ("session.checkout_step", "basket", "session.checkout_step", "one of ['cart', 'shipping'"),
    ("session.checkout_step", 2, "session.checkout_step", "one of"),
    ("session.cart_sessions", 0, "session.cart_sessions", "an int in [1, 1000000000]"),
    ("session.cart_sessions", 2.0, "session.cart_sessions", "an int"),
    ("channels", ["email"], "channels", "a dict"),
    ("channels.email", "yes", "channels.email", "a bool"),
    ("channels.sms", 1, "channels.sms", "a bool"),
    ("history", [], "history", "a dict"),
    ("history.first_seen", float("nan"), "history.first_seen", "finite"),
    ("history.sessions", -3, "history.sessions", "an int"),
    ("history.carts_abandoned", 2.5, "history.carts_abandoned", "an int"),
    ("history.orders", {"a": 1}, "history.orders", "a list"),
    ("history.orders", [], None, None),  # an empty list is fine
    ("history.orders[1]", None, "history.orders[1]", "a dict"),
    ("history.orders[1].items", "i1", "history.orders[1].items", "a list"),
    ("history.orders[1].items", ["i1"] * 101, "history.orders[1].items", "at most 100"),
    ("history.orders[0].items[0]", 7, "history.orders[0].items[0]", "string"),
    ("history.orders[0].value", -5.0, "history.orders[0].value", ">= 0"),
    ("history.orders[0].value", DELETE, "history.orders[0].value", "missing"),
    ("history.orders[0].timestamp", DELETE, "history.orders[0].timestamp", "missing"),
    ("history.orders[2].coupon_percent", 150, "history.orders[2].coupon_percent", "[0, 100]"),
    ("history.orders[2].coupon_percent", "10", "history.orders[2].coupon_percent", "[0, 100]"),
    ("history.orders[2].recovered_by", 3, "history.orders[2].recovered_by", "string"),
    ("history.orders[2].recovered_by", "", "history.orders[2].recovered_by", "non-empty string"),
    ("history.orders[2].items[0]", "x" * 257, "history.orders[2].items[0]", "at most 256"),
    ("history.contacts", "none", "history.contacts", "a list"),
    ("history.contacts[1].converted", 1, "history.contacts[1].converted", "a bool"),
    ("history.contacts[0].action", "", "history.contacts[0].action", "non-empty string"),
    ("history.contacts[0].timestamp", float("-inf"), "history.contacts[0].timestamp", "finite"),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "fragment"), BAD_CASES, ids=lambda v: str(v)[:30]
)
def test_bad_field_is_named_with_its_value(ctx, path, value, field, fragment):
    _set(ctx, path, value)
    if field is None:
        validate_context(ctx)
        return
    with pytest.raises(ContextError) as info:
        validate_context(ctx)
    err = info.value
    assert err.field == field
    assert fragment in str(err)
    assert str(err).startswith(field)
    if value is DELETE:
        assert err.value is None
    elif isinstance(value, float) and math.isnan(value):
        assert math.isnan(err.value)
    elif path == field:
        assert err.value is value or err.value == value


def test_oversized_history_is_rejected_with_count(ctx):
    ctx["history"]["contacts"] = ctx["history"]["contacts"][:1] * 1001
    message = r"history.contacts has 1001 entries, must have at most 1000"
    with pytest.raises(ContextError, match=message):
        validate_context(ctx)


def test_non_dict_context():
    with pytest.raises(ContextError) as info:
        validate_context(["user_id", "u1"])
    assert info.value.field == "context"


def test_limits_are_configurable(ctx):
    validate_context(ctx, ContextLimits(max_cart_lines=3))
    with pytest.raises(ContextError, match="at most 2"):
        validate_context(ctx, ContextLimits(max_cart_lines=2))
    ctx["user_id"] = "abcdef"
    with pytest.raises(ContextError, match="at most 5 characters"):
        validate_context(ctx, ContextLimits(max_string=5))
    with pytest.raises(ContextError, match=r"history\.orders has 3 entries"):
        validate_context(ctx, ContextLimits(max_history_events=2))
    for line in ctx["cart"]:
        line["quantity"] = 1
    ctx["session"] = {}
    with pytest.raises(ContextError, match=r"history.sessions == \d+, must be an int in \[0, 1\]"):
        validate_context(ctx, ContextLimits(max_count=1))


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, None])
def test_limits_reject_bad_values(bad):
    with pytest.raises(ValueError, match=r"ContextLimits.max_cart_lines == "):
        ContextLimits(max_cart_lines=bad)


def test_limits_are_frozen():
    limits = ContextLimits()
    with pytest.raises(AttributeError):
        limits.max_string = 3  # type: ignore[misc]


def test_numpy_scalars_and_extra_keys_are_accepted(ctx):
    ctx["timestamp"] = np.float64(ctx["timestamp"])
    ctx["cart"][0]["price"] = np.float32(3.5)
    ctx["cart"][0]["quantity"] = np.int64(2)
    ctx["session"]["hour"] = np.int32(5)
    ctx["channels"]["email"] = np.bool_(True)
    ctx["something_new"] = {"whatever": [1, 2]}
    ctx["cart"][1]["sku_colour"] = "red"
    validate_context(ctx)


def test_numpy_bool_is_not_a_number(ctx):
    ctx["cart"][0]["price"] = np.bool_(True)
    with pytest.raises(ContextError, match=r"cart\[0\].price"):
        validate_context(ctx)


def test_optional_sections_may_be_missing_or_none(ctx):
    for key in ("session", "channels", "history"):
        partial = copy.deepcopy(ctx)
        del partial[key]
        validate_context(partial)
        partial[key] = None
        validate_context(partial)
    ctx["session"] = {}
    ctx["history"] = {}
    ctx["channels"] = {}
    validate_context(ctx)


def test_error_pickles_with_field_and_value():
    err = ContextError("cart[0].price", -1.0, "cart[0].price == -1.0, must be a finite number >= 0")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.field, clone.value, str(clone)) == (err.field, err.value, str(err))


def test_long_values_are_truncated_in_message(ctx):
    ctx["user_id"] = "x" * 10_000
    with pytest.raises(ContextError) as info:
        validate_context(ctx)
    assert len(str(info.value)) < 200
    assert "10000 chars" in str(info.value)


def test_validation_does_not_mutate(ctx):
    before = copy.deepcopy(ctx)
    validate_context(ctx)
    assert ctx == before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(factory.context_strategy())
def test_random_valid_contexts_pass(context):
    validate_context(context)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
PATHS = [case[0] for case in BAD_CASES if case[1] is not DELETE]


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(PATHS), value=JSON)
def test_arbitrary_values_raise_only_context_error(path, value):
    context = _base_context()
    _set(context, path, value)
    try:
        validate_context(context)
    except ContextError as err:
        assert err.field.startswith(path.split(".")[0].split("[")[0]) or err.field == "context"


def _orders_by_hand(orders):
    """count, total value, latest timestamp, coupon count and depth, items: summed directly."""
    coupons = [o["coupon_percent"] for o in orders if o.get("coupon_percent")]
    return (
        len(orders),
        float(sum(o["value"] for o in orders)),
        max((o["timestamp"] for o in orders), default=-math.inf),
        len(coupons),
        float(sum(coupons)),
        [item for o in orders for item in o["items"]],
    )


def test_validation_returns_the_summary_of_the_orders():
    contexts = factory.make_contexts(WORLD, seed=4) + list(factory.edge_contexts(WORLD).values())
    with_orders = 0
    for context in contexts:
        summary = validate_context(context).orders
        orders = (context.get("history") or {}).get("orders") or []
        with_orders += bool(orders)
        count, total, last, n_coupon, depth, items = _orders_by_hand(orders)
        assert (
            summary.count,
            summary.last_timestamp,
            summary.coupon_count,
            list(summary.items),
        ) == (count, last, n_coupon, items)
        assert summary.total_value == pytest.approx(total, rel=1e-12)
        assert summary.coupon_depth == pytest.approx(depth, rel=1e-12)
        own = summarise_orders(orders)  # the plain pass agrees exactly
        assert summary[:5] == own[:5] and list(summary.items) == list(own.items)
    assert with_orders > len(contexts) // 2


def test_summary_without_orders_and_after_the_slow_path(ctx):
    assert validate_context({k: v for k, v in ctx.items() if k != "history"}).orders is NO_ORDERS
    ctx["history"]["orders"] = []
    assert validate_context(ctx).orders is NO_ORDERS
    ctx["history"]["orders"] = [
        {"timestamp": np.float64(1.0), "items": ["i1"], "value": 2.0},
        {"timestamp": 3.0, "items": ["i2", "i1"], "value": 1.5, "coupon_percent": 10},
    ]
    # numpy scalar: checked field by field, then summed by summarise_orders
    assert validate_context(ctx).orders == (2, 3.5, 3.0, 1, 10.0, ["i1", "i2", "i1"])


TRICKY = (
    st.sampled_from(
        [
            "",
            "x" * 257,
            "i1",
            0,
            -1,
            1,
            23,
            24,
            1.5,
            -0.0,
            2**40,
            True,
            False,
            None,
            float("nan"),
            float("inf"),
            float("-inf"),
            np.float64(2.0),
            np.int64(3),
            np.bool_(True),
            [],
            ["i1"],
            [""],
            [7],
            {},
        ]
    )
    | JSON
)
EXTRA_PATHS = [
    "cart[2].category",
    "history.orders[1].recovered_by",
    "history.orders[0].coupon_percent",
    "session.device",
    "history.first_seen",
    "history.contacts[1].action",
    "cart[0].quantity",
    "history.product_views",
    "history.orders[1].timestamp",
    "history.contacts[0].converted",
    "channels.push",
]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    edits=st.lists(st.tuples(st.sampled_from(PATHS + EXTRA_PATHS), TRICKY), min_size=1, max_size=3)
)
def test_fast_paths_agree_with_the_field_by_field_check(edits):
    """Whatever the input, the fast paths accept, reject (naming the same field) and summarise
    exactly as the slow, field-by-field check does."""
    context = _base_context()
    for path, value in edits:
        # An earlier edit may have replaced the parent (KeyError, IndexError, TypeError).
        with contextlib.suppress(KeyError, IndexError, TypeError):
            _set(context, path, copy.deepcopy(value))  # no value shared between two edits
    outcomes = []
    for candidate in (context, factory.as_read_only(context)):
        try:
            parsed = validate_context(candidate)
        except ContextError as err:
            outcomes.append(("error", err.field))
        else:
            summary = parsed.orders
            outcomes.append(
                (
                    "valid",
                    summary[:5],
                    list(summary.items),
                    parsed.timestamp,
                    parsed.cart_value,
                    parsed.cart_units,
                    parsed.channel_key,
                    dict(parsed.channels),
                )
            )
    assert outcomes[0] == outcomes[1]


# --------------------------------------------------------------------------- recovery (multi-touch)
def _with_recovery(recovery):
    return {
        "user_id": "u1",
        "timestamp": 1.0,
        "cart": [{"item_id": "i1", "price": 10.0, "quantity": 1}],
        "recovery": recovery,
    }


def test_recovery_fields_are_accepted():
    from engine.context import validate_context

    validate_context(_with_recovery({"touch": 1, "previous": []}))
    validate_context(
        _with_recovery(
            {
                "touch": 3,
                "previous": [
                    {
                        "action": "recall_message",
                        "minutes_after_abandon": 60.0,
                        "opened": True,
                        "clicked": False,
                    },
                    {
                        "action": "none",
                        "minutes_after_abandon": 720,
                        "opened": False,
                        "clicked": False,
                    },
                ],
            }
        )
    )


@pytest.mark.parametrize(
    "recovery, field",
    [
        ({"touch": 0, "previous": []}, "recovery.touch"),
        ({"previous": []}, "recovery.touch"),
        ({"touch": True}, "recovery.touch"),
        ([1], "recovery"),
        (
            {
                "touch": 1,
                "previous": [
                    {
                        "action": "none",
                        "minutes_after_abandon": 1.0,
                        "opened": False,
                        "clicked": False,
                    }
                ],
            },
            "recovery.previous",
        ),
        (
            {
                "touch": 2,
                "previous": [
                    {"action": "", "minutes_after_abandon": 1.0, "opened": False, "clicked": False}
                ],
            },
            "recovery.previous[0].action",
        ),
        (
            {
                "touch": 2,
                "previous": [
                    {
                        "action": "none",
                        "minutes_after_abandon": -1.0,
                        "opened": False,
                        "clicked": False,
                    }
                ],
            },
            "recovery.previous[0].minutes_after_abandon",
        ),
        (
            {
                "touch": 2,
                "previous": [
                    {"action": "none", "minutes_after_abandon": 1.0, "opened": 1, "clicked": False}
                ],
            },
            "recovery.previous[0].opened",
        ),
    ],
)
def test_bad_recovery_fields_are_named(recovery, field):
    from engine.context import ContextError, validate_context

    with pytest.raises(ContextError) as err:
        validate_context(_with_recovery(recovery))
    assert err.value.field == field
