"""DecisionEngine.decide: valid probabilities, guardrails, payloads, fallbacks and strict mode."""

import copy
import math

import context_factory as factory
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ACTION_NAMES, DecisionEngine
from engine.actions import ACTION_CHANNELS
from engine.cf import CFModel, interactions_from_contexts
from engine.guardrails import GuardrailConfig


def _check_decision(d, ctx, eng):
    assert d.action in ACTION_NAMES and not d.fallback
    assert math.isclose(sum(d.probabilities.values()), 1.0, abs_tol=1e-9)
    assert all(p > 0 for p in d.probabilities.values())
    assert d.probability == d.probabilities[d.action]
    opt = ctx.get("channels", {})
    for name in d.probabilities:  # only eligible actions get probability
        assert name == "none" or any(opt.get(c) for c in ACTION_CHANNELS[name])
    floor = eng.guardrails.config.exploration_floor / len(d.probabilities)
    assert min(d.probabilities.values()) >= floor - 1e-12


@pytest.mark.parametrize("learner", ["vw", "linucb", "lints"])
def test_every_decision_on_simulated_carts_is_valid(sim_contexts, learner):
    eng = DecisionEngine(seed=1, learner=learner)
    for ctx in sim_contexts[:400]:
        d = eng.decide(ctx)
        _check_decision(d, ctx, eng)
        eng.reward(d.decision_id, 1.0 if d.action != "none" else 0.0)
    assert eng.health()["fallbacks"] == 0


channel_flags = st.fixed_dictionaries({c: st.booleans() for c in ("email", "sms", "push")})
cart_line = st.fixed_dictionaries(
    {
        "item_id": st.text(min_size=1, max_size=12),
        "price": st.floats(0, 5000, allow_nan=False),
        "quantity": st.integers(1, 5),
    }
)
random_context = st.fixed_dictionaries(
    {
        "user_id": st.text(min_size=1, max_size=20),
        "timestamp": st.floats(1.6e9, 1.9e9),
        "cart": st.lists(cart_line, min_size=1, max_size=6),
        "channels": channel_flags,
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=random_context)
def test_property_probabilities_valid_and_guardrails_respected(ctx):
    eng = _shared_engine()
    d = eng.decide(ctx)
    _check_decision(d, ctx, eng)


_ENGINE = {}


def _shared_engine():
    if "e" not in _ENGINE:
        _ENGINE["e"] = DecisionEngine(seed=0, learner="linucb")
    return _ENGINE["e"]


def test_frequency_cap_blocks_contacts(sim_contexts):
    eng = DecisionEngine(seed=0, learner="linucb", guardrails=GuardrailConfig(max_contacts=1))
    ctx = copy.deepcopy(sim_contexts[0])
    ctx["channels"] = {"email": True, "sms": True, "push": True}
    ctx["history"]["contacts"] = [
        {"timestamp": ctx["timestamp"] - 3600, "action": "recall_message", "converted": False}
    ]
    d = eng.decide(ctx)
    assert list(d.probabilities) == ["none"] and d.action == "none"


def test_daily_coupon_budget_stops_coupons_when_spent(sim_contexts):
    cfg = GuardrailConfig(daily_coupon_budget=30.0, max_contacts=None)
    eng = DecisionEngine(seed=0, learner="linucb", guardrails=cfg)
    spent = 0.0
    coupons_after_budget = 0
    for ctx in sim_contexts[:600]:
        ctx = {**ctx, "timestamp": 1_767_300_000.0}  # all on one day
        d = eng.decide(ctx)
        value = sum(line["price"] * line["quantity"] for line in ctx["cart"])
        if d.action.startswith("coupon_"):
            spent += d.payload["coupon_percent"] / 100 * value
        if spent > 30.0 and d.action.startswith("coupon_"):
            coupons_after_budget += 1
    assert spent <= 30.0 + 1e-9
    assert eng.guardrails.blocked["budget"] > 0 and coupons_after_budget == 0


def test_payloads_carry_what_checkout_needs(sim_contexts):
    eng = DecisionEngine(
        seed=0,
        learner="linucb",
        guardrails=GuardrailConfig(exploration_floor=0.9, max_contacts=None),
    )
    seen = {}
    for ctx in sim_contexts[:500]:
        d = eng.decide(ctx)
        seen.setdefault(d.action, (d, ctx))
    assert set(seen) >= {"none", "coupon_10", "recall_message", "recommendation"}
    for action, (d, ctx) in seen.items():
        if action == "none":
            assert d.payload == {}
            continue
        assert ctx["channels"][d.payload["channel"]]
        if action.startswith("coupon_"):
            assert d.payload["coupon_percent"] == int(action.split("_")[1])
        if action == "time_limited_offer":
            assert d.payload["expires_at"] == ctx["timestamp"] + 7200
        if action == "recommendation":
            assert isinstance(d.payload["items"], list)


def _bad_inputs(base):
    def edit(fn):
        ctx = copy.deepcopy(base)
        fn(ctx)
        return ctx

    return [
        ("not a dict", "oops", None),
        ("missing user_id", edit(lambda c: c.pop("user_id")), "user_id"),
        ("user_id wrong type", edit(lambda c: c.update(user_id=42)), "user_id"),
        ("user_id oversized", edit(lambda c: c.update(user_id="x" * 10_000)), "user_id"),
        ("missing timestamp", edit(lambda c: c.pop("timestamp")), "timestamp"),
        ("timestamp inf", edit(lambda c: c.update(timestamp=float("inf"))), "timestamp"),
        ("empty cart", edit(lambda c: c.update(cart=[])), "cart"),
        ("cart not a list", edit(lambda c: c.update(cart="shoes")), "cart"),
        ("NaN price", edit(lambda c: c["cart"][0].update(price=float("nan"))), "cart[0].price"),
        ("inf price", edit(lambda c: c["cart"][0].update(price=float("inf"))), "cart[0].price"),
        ("negative price", edit(lambda c: c["cart"][0].update(price=-3.0)), "cart[0].price"),
        ("price as string", edit(lambda c: c["cart"][0].update(price="12.50")), "cart[0].price"),
        ("zero quantity", edit(lambda c: c["cart"][0].update(quantity=0)), "cart[0].quantity"),
        ("missing item id", edit(lambda c: c["cart"][0].pop("item_id")), "cart[0].item_id"),
        ("oversized cart", edit(lambda c: c.update(cart=c["cart"] * 200)), "cart"),
        ("channels wrong type", edit(lambda c: c.update(channels=["email"])), "channels"),
    ]


def test_bad_inputs_fall_back_safely_and_are_counted(sim_contexts):
    eng = DecisionEngine(seed=0, learner="linucb")
    cases = _bad_inputs(sim_contexts[0])
    for name, ctx, field in cases:
        d = eng.decide(ctx)
        assert d.fallback and d.action == "none" and d.probabilities == {"none": 1.0}, name
        if field:
            assert d.reason.startswith(field), (name, d.reason)
    health = eng.health()
    assert health["fallbacks"] == len(cases) and health["decisions"] == 0


def test_unknown_items_are_not_an_error(sim_contexts):
    eng = DecisionEngine(seed=0, learner="linucb")
    ctx = copy.deepcopy(sim_contexts[0])
    ctx["cart"][0]["item_id"] = "never-seen-before"
    assert not eng.decide(ctx).fallback


def test_strict_mode_raises_value_error_naming_field_and_value(sim_contexts):
    eng = DecisionEngine(seed=0, learner="linucb", strict=True)
    for name, ctx, field in _bad_inputs(sim_contexts[0]):
        with pytest.raises(ValueError) as err:
            eng.decide(ctx)
        if field:
            assert field in str(err.value), (name, str(err.value))
    ctx = copy.deepcopy(sim_contexts[0])
    ctx["cart"][0]["price"] = float("nan")
    with pytest.raises(ValueError, match=r"cart\[0\]\.price.*nan"):
        eng.decide(ctx)


def test_custom_fallback_action(sim_contexts):
    eng = DecisionEngine(seed=0, learner="linucb", fallback_action="recall_message")
    assert eng.decide({"user_id": "u"}).action == "recall_message"
    with pytest.raises(ValueError, match="fallback_action == 'discount'"):
        DecisionEngine(fallback_action="discount")


def test_rewards_duplicates_unknown_and_invalid_are_counted(sim_contexts):
    eng = DecisionEngine(seed=0, learner="linucb")
    d = eng.decide(sim_contexts[0])
    assert eng.reward(d.decision_id, 5.0) is True
    assert eng.reward(d.decision_id, 7.0) is False
    assert eng.reward("no-such-id", 1.0) is False
    assert eng.reward(d.decision_id, float("nan")) is False
    h = eng.health()
    assert (
        h["rewards_learned"],
        h["duplicate_rewards"],
        h["unknown_rewards"],
        h["invalid_rewards"],
    ) == (1, 1, 1, 1)
    assert eng.learner.n_updates == 1
    with pytest.raises(ValueError, match="value == nan"):
        DecisionEngine(seed=0, learner="linucb", strict=True).reward("x", float("nan"))


def test_same_seed_same_decisions(sim_contexts):
    a = DecisionEngine(seed=5, learner="vw")
    b = DecisionEngine(seed=5, learner="vw")
    for ctx in sim_contexts[:200]:
        da, db = a.decide(ctx), b.decide(ctx)
        assert (da.action, da.probabilities) == (db.action, db.probabilities)
        a.reward(da.decision_id, 1.0)
        b.reward(db.decision_id, 1.0)


def test_guardrail_block_counts_are_exact_under_threads(sim_contexts):
    import threading

    from engine.guardrails import Guardrails

    guard = Guardrails(GuardrailConfig(max_contacts=0))  # every contact action is blocked
    ctx = {**sim_contexts[0], "channels": {"email": True, "sms": True, "push": True}}
    per_thread = 2000

    def worker():
        for _ in range(per_thread):
            guard.eligible(ctx, "u")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert guard.blocked["frequency"] == 8 * per_thread


_DISTRIBUTIONS = st.lists(
    st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=9
).filter(lambda rows: any(ok and p > 0 for p, ok in rows))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(rows=_DISTRIBUTIONS, u=st.floats(0.0, 1.0, exclude_max=True))
def test_list_sampling_and_floor_match_the_numpy_reference(rows, u):
    """decide works on plain lists for speed; it draws exactly what the numpy inverse CDF draws."""
    import numpy as np

    from engine.guardrails import Guardrails
    from engine.sampling import sample_index

    mask = [ok for _, ok in rows]
    probs = [p if ok else 0.0 for p, ok in rows]
    cdf = np.cumsum(probs)
    expected = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    if expected >= len(probs) or not mask[expected]:
        expected = int(np.flatnonzero(mask)[-1])
    got = sample_index(probs, mask, u)
    assert got == expected and mask[got]
    guard = Guardrails(GuardrailConfig(exploration_floor=0.05))
    floor, eligible = 0.05, np.array(mask)
    reference = (1.0 - floor) * np.array(probs) + floor * eligible / eligible.sum()
    got_floor = guard.apply_floor(probs, mask)
    np.testing.assert_array_equal(got_floor, reference if eligible.sum() > 1 else probs)


def test_decision_is_a_frozen_dataclass_with_defaults():
    import dataclasses
    import pickle

    from engine.decision import Decision

    d = Decision("id1", "coupon_5", 0.4, {"none": 0.6, "coupon_5": 0.4})
    assert (d.payload, d.model_version, d.fallback, d.reason) == ({}, "", False, None)
    assert d.payload is not Decision("id2", "none", 1.0, {"none": 1.0}).payload  # no shared default
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.action = "none"  # type: ignore[misc]
    assert dataclasses.replace(d, action="none").action == "none"
    assert pickle.loads(pickle.dumps(d)) == d
    assert dataclasses.asdict(d)["probabilities"] == {"none": 0.6, "coupon_5": 0.4}


def _as_numpy_scalars(value):
    """The same record with every number and bool a numpy scalar."""
    if isinstance(value, dict):
        return {k: _as_numpy_scalars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_numpy_scalars(v) for v in value]
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, (int, float)):
        return np.float64(value) if isinstance(value, float) else np.int64(value)
    return value


@pytest.mark.parametrize("convert", [factory.as_read_only, _as_numpy_scalars])
def test_other_container_and_number_types_give_the_same_decisions(sim_contexts, convert):
    """Contexts that miss the fast paths (checked field by field) are decided exactly as the
    plain-dict ones: same action, probabilities and payload, CF features and recommendations on."""
    cf = CFModel(n_factors=8).fit(interactions_from_contexts(sim_contexts[:1500]))
    plain = DecisionEngine(seed=3, learner="vw", cf=cf, strict=True)
    other = DecisionEngine(seed=3, learner="vw", cf=cf, strict=True)
    recommendations = 0
    for ctx in sim_contexts[1500:1800]:
        a, b = plain.decide(ctx), other.decide(convert(ctx))
        assert (a.action, a.probabilities, a.payload) == (b.action, b.probabilities, b.payload)
        recommendations += bool(a.payload.get("items"))
        reward = 1.0 if a.action != "none" else 0.0
        assert plain.reward(a.decision_id, reward) and other.reward(b.decision_id, reward)
    assert recommendations > 10  # the payload comparison covered CF rankings
    assert other.health()["fallbacks"] == 0
