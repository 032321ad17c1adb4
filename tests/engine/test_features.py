"""Tests of engine.features: the learners' feature vector."""

from __future__ import annotations

import copy

import context_factory as factory
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from engine.cf import CF_FEATURES, CFModel, interactions_from_contexts
from engine.context import validate_context
from engine.features import (
    BIAS_FEATURE,
    MIN_REWARD_DIVISOR,
    PROFILE_SCALING,
    REWARD_REFERENCE_VALUE,
    RISK_FEATURE,
    FeatureBuilder,
)
from engine.profile import PROFILE_FEATURES, profile_matrix, profile_values
from engine.risk import RiskModel

WORLD = factory.make_world(seed=2, n_users=400, n_items=150)
CONTEXTS = factory.make_contexts(WORLD, seed=8)
CF = CFModel(seed=0).fit(interactions_from_contexts(CONTEXTS))
_X = profile_matrix(CONTEXTS)
_Y = (np.random.default_rng(1).random(len(_X)) < 0.2).astype(int)
RISK = RiskModel().fit(_X, _Y)
FULL = FeatureBuilder(cf=CF, risk=RISK)


def test_names_per_configuration():
    bare = FeatureBuilder()
    assert bare.feature_names == (*PROFILE_FEATURES, BIAS_FEATURE)
    assert FeatureBuilder(cf=CF).feature_names == PROFILE_FEATURES + CF_FEATURES + (BIAS_FEATURE,)
    assert FULL.feature_names == PROFILE_FEATURES + CF_FEATURES + (RISK_FEATURE, BIAS_FEATURE)
    assert FULL.n_features == 41 and len(set(FULL.feature_names)) == 41
    assert set(PROFILE_SCALING) == set(PROFILE_FEATURES)


@pytest.mark.parametrize("case", sorted(factory.edge_contexts(WORLD)))
@pytest.mark.parametrize("config", ["bare", "cf", "full"])
def test_shape_dtype_finite_on_edge_cases(case, config):
    builder = {"bare": FeatureBuilder(), "cf": FeatureBuilder(cf=CF), "full": FULL}[config]
    ctx = factory.edge_contexts(WORLD)[case]
    validate_context(ctx)
    x = builder.transform(ctx)
    assert x.shape == (builder.n_features,) and x.dtype == np.float64
    assert np.all(np.isfinite(x))
    assert x[-1] == 1.0


def test_values_are_built_from_the_parts():
    ctx = CONTEXTS[11]
    x = dict(zip(FULL.feature_names, FULL.transform(ctx), strict=True))
    raw = profile_values(ctx)
    for name, value in zip(PROFILE_FEATURES, raw, strict=True):
        centre, scale = PROFILE_SCALING[name]
        assert x[name] == pytest.approx((value - centre) / scale, rel=1e-12, abs=1e-12)
    for name, value in zip(CF_FEATURES, CF.features(ctx), strict=True):
        assert x[name] == value
    assert x[RISK_FEATURE] == pytest.approx(RISK.predict_proba([raw])[0], rel=1e-12)
    assert FULL.named(ctx) == x


def test_risk_on_a_subset_of_profile_features():
    names = ("cart_value_log", "frequency_log", "device_mobile")
    cols = [PROFILE_FEATURES.index(n) for n in names]
    risk = RiskModel(feature_names=names).fit(_X[:, cols], _Y)
    builder = FeatureBuilder(risk=risk)
    ctx = CONTEXTS[3]
    expected = risk.predict_proba(_X[3:4, cols])[0]
    assert builder.named(ctx)[RISK_FEATURE] == pytest.approx(expected, rel=1e-12)


def test_transform_many_equals_rows_and_is_deterministic():
    batch = FULL.transform_many(CONTEXTS[:50])
    assert batch.shape == (50, FULL.n_features)
    for i in (0, 17, 49):
        np.testing.assert_array_equal(batch[i], FULL.transform(CONTEXTS[i]))
    np.testing.assert_array_equal(FULL.transform_many(CONTEXTS[:50]), batch)
    rebuilt = FeatureBuilder(
        cf=CFModel.from_dict(CF.to_dict()), risk=RiskModel.from_dict(RISK.to_dict())
    )
    np.testing.assert_array_equal(rebuilt.transform_many(CONTEXTS[:50]), batch)
    assert FULL.transform_many([]).shape == (0, FULL.n_features)


def test_transform_does_not_mutate_context():
    ctx = CONTEXTS[4]
    before = copy.deepcopy(ctx)
    FULL.transform(ctx)
    assert ctx == before


def test_scales_are_roughly_standardised():
    X = FULL.transform_many(CONTEXTS)
    body = X[:, :-1]
    assert np.all(np.abs(body.mean(axis=0)) < 1.5)
    assert np.all(body.std(axis=0) < 2.0)
    assert np.percentile(np.abs(body), 99) < 4.0


def test_bad_components():
    with pytest.raises(ValueError, match="cf == dict, must be a CFModel"):
        FeatureBuilder(cf={})
    with pytest.raises(ValueError, match="risk == str"):
        FeatureBuilder(risk="model")
    with pytest.raises(ValueError, match="not fitted"):
        FeatureBuilder(cf=CFModel())
    foreign = RiskModel(feature_names=("a", "b")).fit(np.eye(2).repeat(5, 0), [0, 1] * 5)
    with pytest.raises(ValueError, match=r"risk.feature_names contains \['a', 'b'\]"):
        FeatureBuilder(risk=foreign)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(factory.context_strategy())
def test_random_valid_contexts_give_finite_vectors(ctx):
    validate_context(ctx)
    x = FULL.transform(ctx)
    assert x.shape == (FULL.n_features,)
    assert np.all(np.isfinite(x))
    np.testing.assert_array_equal(FULL.transform(ctx), x)


def _cart_value(ctx):
    return sum(line["price"] * line["quantity"] for line in ctx["cart"])


def test_reward_divisor_is_the_cart_value_over_the_reference():
    X = FULL.transform_many(CONTEXTS)
    expected = np.maximum(
        np.array([_cart_value(c) for c in CONTEXTS]) / REWARD_REFERENCE_VALUE, MIN_REWARD_DIVISOR
    )
    np.testing.assert_allclose(FULL.reward_divisor(X), expected, rtol=1e-9)
    # one row (the engine's reward path) agrees with the batch path
    assert [float(FULL.reward_divisor(x)) for x in X[:20]] == pytest.approx(
        expected[:20].tolist(), rel=1e-12
    )
    tiny = FeatureBuilder().transform(
        {
            "user_id": "u1",
            "timestamp": 0.0,
            "cart": [{"item_id": "i1", "price": 2.0, "quantity": 1}],
        }
    )
    assert float(FeatureBuilder().reward_divisor(tiny)) == MIN_REWARD_DIVISOR
    plain = FeatureBuilder(cf=CF, risk=RISK, reward_per_value=False)
    np.testing.assert_array_equal(plain.reward_divisor(X), 1.0)
    assert float(plain.reward_divisor(X[0])) == 1.0


def test_reward_divisor_refuses_bad_shapes_and_flags():
    with pytest.raises(ValueError, match=r"X has shape \(3,\)"):
        FULL.reward_divisor(np.zeros(3))
    with pytest.raises(ValueError, match="X has shape"):
        FULL.reward_divisor(np.zeros((2, 2, FULL.n_features)))
    with pytest.raises(ValueError, match="reward_per_value == 'yes'"):
        FeatureBuilder(reward_per_value="yes")


def test_inputs_the_engine_shares_give_the_same_vector():
    """transform of the validator's parsed record with the CF items equals transform of the raw
    record alone (which parses it), also for records that miss validation's fast paths."""
    contexts = CONTEXTS[:200] + list(factory.edge_contexts(WORLD).values())
    for ctx in contexts + [factory.as_read_only(c) for c in contexts[:50]]:
        parsed = validate_context(ctx)
        items = CF.shopper_items(parsed)
        assert items == CF.shopper_items(ctx)
        np.testing.assert_array_equal(FULL.transform(parsed, items), FULL.transform(ctx))
        assert FULL.transform_many([parsed, ctx]).tolist() == [FULL.transform(ctx).tolist()] * 2


def test_recovery_features_follow_the_flow():
    from engine.features import RECOVERY_FEATURES, FeatureBuilder

    ctx = {
        "user_id": "u1",
        "timestamp": 0.0,
        "cart": [{"item_id": "i1", "price": 20.0, "quantity": 1}],
        "recovery": {
            "touch": 3,
            "previous": [
                {
                    "action": "coupon_10",
                    "minutes_after_abandon": 60.0,
                    "opened": True,
                    "clicked": True,
                },
                {
                    "action": "none",
                    "minutes_after_abandon": 720.0,
                    "opened": False,
                    "clicked": False,
                },
            ],
        },
    }
    plain, flow = FeatureBuilder(), FeatureBuilder(recovery=True)
    named = flow.named(ctx)
    assert [named[n] for n in RECOVERY_FEATURES] == [2.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0]
    assert (
        flow.feature_names[-1] == "bias" and len(flow.feature_names) == len(plain.feature_names) + 7
    )
    np.testing.assert_array_equal(
        flow.transform(ctx)[: len(plain.feature_names) - 1], plain.transform(ctx)[:-1]
    )
    no_flow = {k: v for k, v in ctx.items() if k != "recovery"}
    assert [flow.named(no_flow)[n] for n in RECOVERY_FEATURES] == [0.0] * 7
