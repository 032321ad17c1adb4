"""Tests of engine.profile: behaviour profile features computed by hand on known histories."""

from __future__ import annotations

import math

import context_factory as factory
import numpy as np
import pytest

from engine.actions import DAY
from engine.profile import (
    CONTACT_PRIOR_RATE,
    COUPON_PRIOR_SHARE,
    NO_EVENT_DAYS,
    PRIOR_STRENGTH,
    PROFILE_FEATURES,
    action_family,
    behaviour_profile,
    profile_matrix,
    profile_values,
)

NOW = 1_767_225_600.0


def known_context():
    return {
        "user_id": "u1",
        "timestamp": NOW,
        "cart": [
            {"item_id": "a", "price": 20.0, "quantity": 2},
            {"item_id": "b", "price": 9.5, "quantity": 1},
        ],
        "session": {
            "device": "tablet",
            "hour": 18,
            "product_views": 7,
            "session_seconds": 412.0,
            "minutes_cart_to_abandon": 3.5,
            "minutes_since_abandon": 30.0,
            "shipping_page_views": 2,
            "checkout_step": "payment",
            "cart_sessions": 3,
        },
        "channels": {"email": True, "sms": False, "push": True},
        "history": {
            "first_seen": NOW - 300 * DAY,
            "sessions": 23,
            "product_views": 140,
            "carts_abandoned": 5,
            "orders": [
                {
                    "timestamp": NOW - 40 * DAY,
                    "items": ["a"],
                    "value": 50.0,
                    "coupon_percent": None,
                    "recovered_by": None,
                },
                {
                    "timestamp": NOW - 10 * DAY,
                    "items": ["b", "c"],
                    "value": 150.0,
                    "coupon_percent": 10,
                    "recovered_by": "coupon_10",
                },
            ],
            "contacts": [
                {"timestamp": NOW - 60 * DAY, "action": "recall_message", "converted": True},
                {"timestamp": NOW - 12 * DAY, "action": "coupon_10", "converted": False},
                {"timestamp": NOW - 11 * DAY, "action": "coupon_20", "converted": True},
            ],
        },
    }


def test_names_are_unique_and_match_values():
    assert len(set(PROFILE_FEATURES)) == len(PROFILE_FEATURES) == 33
    ctx = known_context()
    assert list(behaviour_profile(ctx)) == list(PROFILE_FEATURES)
    assert len(profile_values(ctx)) == len(PROFILE_FEATURES)


def test_hand_computed_profile():
    p = behaviour_profile(known_context())
    overall = (2 + PRIOR_STRENGTH * CONTACT_PRIOR_RATE) / (3 + PRIOR_STRENGTH)
    prior = PRIOR_STRENGTH * overall
    expected = {
        "session_views_log": math.log(8),
        "lifetime_views_log": math.log(141),
        "lifetime_sessions_log": math.log(24),
        "carts_abandoned_log": math.log(6),
        "cart_to_abandon_log": math.log(4.5),
        "since_abandon_log": math.log(31),
        "shipping_views_log": math.log(3),
        "sessions_per_order_log": math.log1p(23 / 3),
        "recency_days_log": math.log(11),
        "frequency_log": math.log(3),
        "monetary_log": math.log(101),
        "coupon_share": (1 + PRIOR_STRENGTH * COUPON_PRIOR_SHARE) / (2 + PRIOR_STRENGTH),
        "discount_depth": 0.10,
        "contacts_log": math.log(4),
        "contact_conversion": overall,
        "conversion_reminder": (1 + prior) / (1 + PRIOR_STRENGTH),
        "conversion_coupon": (1 + prior) / (2 + PRIOR_STRENGTH),
        "conversion_offer": prior / PRIOR_STRENGTH,
        "conversion_recommendation": prior / PRIOR_STRENGTH,
        "contact_days_log": math.log(12),
        "device_mobile": 0.0,
        "device_desktop": 0.0,
        "device_tablet": 1.0,
        "hour_sin": -1.0,  # 18h is three quarters of the day
        "hour_cos": 0.0,
        "cart_value_log": math.log(50.5),
        "cart_size_log": math.log(4),
        "checkout_shipping": 0.0,
        "checkout_payment": 1.0,
        "cart_sessions_log": math.log(3),
        "session_minutes_log": math.log1p(412.0 / 60.0),
        "tenure_days_log": math.log(301),
        "basket_ratio_log": math.log(49.5 / 100.0),  # the cart against the mean of two orders
    }
    for name, value in expected.items():
        assert p[name] == pytest.approx(value, abs=1e-12), name


def test_intent_features_are_neutral_when_the_context_does_not_say():
    p = behaviour_profile(factory.minimal_context())
    for name in (
        "checkout_shipping",
        "checkout_payment",
        "cart_sessions_log",
        "session_minutes_log",
        "tenure_days_log",
        "basket_ratio_log",
    ):
        assert p[name] == 0.0, name
    ctx = known_context()
    ctx["session"]["checkout_step"] = "shipping"
    ctx["cart"][0]["price"] = 1e9  # an absurd cart: the basket ratio is clipped
    p = behaviour_profile(ctx)
    assert (p["checkout_shipping"], p["checkout_payment"], p["basket_ratio_log"]) == (1.0, 0.0, 5.0)
    ctx["session"]["checkout_step"] = "cart"
    ctx["history"]["first_seen"] = NOW + DAY  # a clock skew: no negative tenure
    p = behaviour_profile(ctx)
    assert (p["checkout_shipping"], p["checkout_payment"], p["tenure_days_log"]) == (0, 0, 0)


def test_empty_history_takes_priors_and_neutral_values():
    ctx = factory.minimal_context()
    p = behaviour_profile(ctx)
    assert p["contact_conversion"] == CONTACT_PRIOR_RATE
    for family in ("reminder", "coupon", "offer", "recommendation"):
        assert p[f"conversion_{family}"] == CONTACT_PRIOR_RATE
    assert p["coupon_share"] == pytest.approx(COUPON_PRIOR_SHARE)
    assert p["recency_days_log"] == pytest.approx(math.log1p(NO_EVENT_DAYS))
    assert p["contact_days_log"] == pytest.approx(math.log1p(NO_EVENT_DAYS))
    assert p["frequency_log"] == p["monetary_log"] == p["discount_depth"] == 0.0
    assert p["hour_sin"] == p["hour_cos"] == 0.0
    assert p["device_mobile"] + p["device_desktop"] + p["device_tablet"] == 0.0
    # the same with explicit empty lists / None sections
    ctx["history"] = {"orders": [], "contacts": []}
    ctx["session"] = None
    assert behaviour_profile(ctx) == p


def test_rates_converge_to_empirical_with_many_contacts():
    ctx = factory.minimal_context()
    contacts = [
        {"timestamp": NOW - DAY, "action": "time_limited_offer", "converted": i < 300}
        for i in range(1000)
    ]
    ctx["history"] = {"contacts": contacts}
    p = behaviour_profile(ctx)
    assert p["contact_conversion"] == pytest.approx(0.3, abs=2e-3)
    assert p["conversion_offer"] == pytest.approx(0.3, abs=2e-3)
    # other families have no data: they fall back to the shopper's overall rate
    assert p["conversion_coupon"] == pytest.approx(p["contact_conversion"])


def test_action_families():
    assert action_family("recall_message") == "reminder"
    assert action_family("coupon_5") == action_family("coupon_50") == "coupon"
    assert action_family("time_limited_offer") == "offer"
    assert action_family("recommendation") == "recommendation"
    assert action_family("none") is None and action_family("mystery") is None


def test_unfamiliar_actions_count_only_overall():
    ctx = factory.minimal_context()
    ctx["history"] = {
        "contacts": [
            {"timestamp": NOW - DAY, "action": "none", "converted": True},
            {"timestamp": NOW - DAY, "action": "coupon_50", "converted": True},
        ]
    }
    p = behaviour_profile(ctx)
    overall = (2 + PRIOR_STRENGTH * CONTACT_PRIOR_RATE) / (2 + PRIOR_STRENGTH)
    assert p["contact_conversion"] == pytest.approx(overall)
    coupon = (1 + PRIOR_STRENGTH * overall) / (1 + PRIOR_STRENGTH)
    assert p["conversion_coupon"] == pytest.approx(coupon)
    assert p["conversion_reminder"] == pytest.approx(overall)


def test_future_events_and_huge_values_stay_finite():
    ctx = known_context()
    ctx["history"]["orders"][1]["timestamp"] = NOW + 5 * DAY
    ctx["history"]["contacts"][2]["timestamp"] = NOW + DAY
    p = behaviour_profile(ctx)
    assert p["recency_days_log"] == 0.0 and p["contact_days_log"] == 0.0
    ctx["cart"][0]["price"] = 1e308
    ctx["cart"][0]["quantity"] = 10**9
    ctx["history"]["orders"][0]["value"] = 1e308
    ctx["history"]["orders"][1]["value"] = 1e308
    ctx["history"]["orders"][0]["timestamp"] = -1e308
    ctx["timestamp"] = 1e308
    assert all(math.isfinite(v) for v in profile_values(ctx))


def test_hour_encoding_is_on_the_unit_circle_and_distinct():
    ctx = known_context()
    points = set()
    for hour in range(24):
        ctx["session"]["hour"] = hour
        p = behaviour_profile(ctx)
        assert p["hour_sin"] ** 2 + p["hour_cos"] ** 2 == pytest.approx(1.0)
        points.add((round(p["hour_sin"], 9), round(p["hour_cos"], 9)))
    assert len(points) == 24
    ctx["session"]["hour"] = 23
    late = behaviour_profile(ctx)
    ctx["session"]["hour"] = 0
    midnight = behaviour_profile(ctx)
    gap = math.dist(
        (late["hour_sin"], late["hour_cos"]), (midnight["hour_sin"], midnight["hour_cos"])
    )
    assert gap == pytest.approx(2 * math.sin(math.pi / 24))  # 23h and 0h are neighbours


def test_unknown_device_is_all_zero():
    ctx = known_context()
    ctx["session"]["device"] = "smart_tv"
    p = behaviour_profile(ctx)
    assert (p["device_mobile"], p["device_desktop"], p["device_tablet"]) == (0.0, 0.0, 0.0)


def test_matrix_matches_rows_and_tracks_ground_truth():
    world = factory.make_world(seed=5, n_users=200, n_items=60)
    contexts = factory.make_contexts(world, seed=2)
    X = profile_matrix(contexts)
    assert X.shape == (200, len(PROFILE_FEATURES)) and X.dtype == np.float64
    np.testing.assert_array_equal(X[17], profile_values(contexts[17]))
    col = PROFILE_FEATURES.index("frequency_log")
    truth = np.array([len(c["history"]["orders"]) for c in contexts])
    np.testing.assert_allclose(X[:, col], np.log1p(truth))
    assert profile_matrix([]).shape == (0, len(PROFILE_FEATURES))


def test_profile_does_not_mutate_context():
    ctx = known_context()
    before = repr(ctx)
    profile_values(ctx)
    assert repr(ctx) == before
