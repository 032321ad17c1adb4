"""Behaviour of each policy against independent computations: static, uniform, rule (from
contexts and from logged features), oracle, full information (ridge algebra), learner wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from engine.features import FeatureBuilder
from engine.learners import make_learner
from policies import (
    FullInformationPolicy,
    LearnerPolicy,
    OraclePolicy,
    RulePolicy,
    StaticPolicy,
    UniformPolicy,
    make_policy,
)
from policies.rule import cart_value
from simulator import CartRecoveryVectorEnv, oracle_action

ALL = np.ones(7, dtype=bool)


def _carts(n=300, seed=0):
    env = CartRecoveryVectorEnv(num_envs=n, n_shoppers=1200, n_items=200)
    _, info = env.reset(seed=seed)
    return (
        list(info["context"][:n]),
        info["action_mask"].astype(bool),
        info["expected_reward"].copy(),
    )


def _ctx(value, quantity=1):
    return {
        "user_id": "u1",
        "timestamp": 1767225600.0,
        "cart": [{"item_id": "i1", "price": value / quantity, "quantity": quantity}],
    }


def test_static_policy_puts_all_mass_on_its_action_or_none():
    mask = np.array(
        [[1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0]], dtype=bool
    )
    p = StaticPolicy("coupon_20").probabilities_batch([{}] * 3, mask)
    np.testing.assert_array_equal(p.argmax(axis=1), [4, 0, 0])
    np.testing.assert_array_equal(p.sum(axis=1), 1.0)
    assert (
        make_policy("none").name == "none" and StaticPolicy("none").probabilities({}, ALL)[0] == 1.0
    )
    with pytest.raises(ValueError, match="coupon_50"):
        StaticPolicy("coupon_50")


def test_uniform_policy_is_uniform_over_eligible():
    mask = np.array([[1, 0, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]], dtype=bool)
    np.testing.assert_allclose(
        UniformPolicy().probabilities_batch([{}, {}], mask), mask / mask.sum(axis=1, keepdims=True)
    )


def test_rule_follows_the_cart_value_threshold_and_eligibility():
    rule = RulePolicy()
    coupon, recall = rule.action_names.index("coupon_10"), rule.action_names.index("recall_message")
    assert rule.probabilities(_ctx(100.0), ALL).argmax() == coupon  # >= threshold
    assert rule.probabilities(_ctx(99.99), ALL).argmax() == recall
    assert rule.probabilities(_ctx(150.0, quantity=3), ALL).argmax() == coupon  # price x quantity
    push_only = np.array([1, 1, 1, 1, 1, 1, 0], dtype=bool)  # recall needs email or sms
    assert rule.probabilities(_ctx(20.0), push_only).argmax() == 0
    assert (
        RulePolicy(threshold=50.0, coupon="coupon_5").probabilities(_ctx(60.0), ALL).argmax() == 2
    )
    with pytest.raises(ValueError, match="threshold"):
        RulePolicy(threshold=-1.0)


def test_rule_from_logged_features_matches_rule_from_contexts():
    contexts, mask, _ = _carts()
    builder = FeatureBuilder()
    X = builder.transform_many(contexts)
    rule = RulePolicy(threshold=60.0)
    from_contexts = rule.probabilities_batch(contexts, mask)
    from_features = rule.feature_probabilities(X, builder.feature_names, mask)
    np.testing.assert_array_equal(from_features, from_contexts)
    values = np.array([cart_value(c) for c in contexts])
    assert (values >= 60).any() and (values < 60).any()  # both branches exercised


def test_oracle_matches_the_simulator_oracle():
    contexts, mask, truth = _carts()
    p = OraclePolicy().probabilities_batch(contexts, mask, truth)
    np.testing.assert_array_equal(
        p.argmax(axis=1), oracle_action({"expected_reward": truth, "action_mask": mask})
    )
    np.testing.assert_array_equal(p.max(axis=1), 1.0)


def test_full_information_coefficients_equal_the_closed_form_ridge_solution():
    contexts, mask, truth = _carts(240, seed=2)
    policy = FullInformationPolicy(ridge=3.0)
    for start in range(0, 240, 80):  # batched, online
        rows = slice(start, start + 80)
        policy.update_batch(
            contexts[rows], np.zeros(80, dtype=int), np.ones(80), np.zeros(80), truth[rows]
        )
    X = FeatureBuilder().transform_many(contexts)
    # per-value target: truth over cart value / 74 USD, from the carts themselves
    value = np.array([cart_value(c) for c in contexts])
    divisor = np.maximum(value / 74.0, 0.1)
    expected = np.linalg.solve(
        X.T @ X + 3.0 * np.eye(X.shape[1]), X.T @ (truth / divisor[:, None])
    )  # batch solve
    np.testing.assert_allclose(policy.coefficients, expected.T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        policy.predict(X), (X @ expected) * divisor[:, None], rtol=1e-6, atol=1e-9
    )
    p = policy.probabilities_batch(contexts, mask)
    np.testing.assert_array_equal(
        p.argmax(axis=1), np.where(mask, X @ expected, -np.inf).argmax(axis=1)
    )
    assert policy.n_updates == 240


def test_full_information_needs_truth_to_learn():
    contexts, _, _truth = _carts(20)
    policy = FullInformationPolicy()
    with pytest.raises(ValueError, match="truth"):
        policy.update(contexts[0], 0, 1.0, 0.0)
    with pytest.raises(ValueError, match="truth"):
        policy.update_batch(contexts, np.zeros(20, dtype=int), np.ones(20), np.zeros(20))
    with pytest.raises(ValueError, match="truth has shape"):
        policy.fit(np.zeros((2, policy.n_features)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="ridge"):
        FullInformationPolicy(ridge=0.0)


def test_learner_policy_transforms_each_batch_once_and_routes_to_the_learner():
    contexts, mask, truth = _carts(100)
    policy = LearnerPolicy("linucb", seed=0)
    calls = []
    builder = policy.features.builder
    original = builder.transform_many
    builder.transform_many = lambda cs: calls.append(len(cs)) or original(cs)
    p = policy.probabilities_batch(contexts, mask)
    a = p.argmax(axis=1)
    policy.update_batch(contexts, a, p[np.arange(100), a], truth[np.arange(100), a])
    assert calls == [100]
    assert policy.learner.n_updates == 100
    # the same rounds fed straight to an engine learner give the same model
    twin = make_learner("linucb", policy.action_names, builder.feature_names)
    X = original(contexts)
    twin.update_batch(
        X, a, p[np.arange(100), a], truth[np.arange(100), a] / builder.reward_divisor(X)
    )
    np.testing.assert_allclose(policy.learner.coefficients, twin.coefficients)


def _learn_linucb(contexts, reward_of, per_value):
    mask = np.ones((len(contexts), 7), dtype=bool)
    policy = make_policy("linucb", seed=0, features=FeatureBuilder(reward_per_value=per_value))
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = policy.probabilities_batch(contexts, mask)
        a = np.array([rng.choice(7, p=row) for row in p])
        policy.update_batch(
            contexts, a, p[np.arange(len(a)), a], reward_of(a) + rng.normal(0, 1, len(a))
        )
    return (policy.probabilities_batch(contexts, mask).argmax(axis=1) == 5).mean()


def test_learner_policy_learns_the_best_action_of_a_simple_problem():
    """Action 5 earns 10 USD, the others nothing (noise of 1 USD); learnt on the profit itself."""
    contexts, _, _ = _carts(300, seed=1)
    assert _learn_linucb(contexts, lambda a: np.where(a == 5, 10.0, 0.0), per_value=False) > 0.95


def test_per_value_target_learns_a_reward_proportional_to_the_cart_value():
    """Action 5 earns 10% of the cart's value, the others nothing: profit per value is a constant
    per action, which the per-value target fits exactly; a linear fit of the profit itself
    mis-ranks many carts (a straight line through 0.1 * exp(cart_value_log) goes negative)."""
    contexts, _, _ = _carts(300, seed=1)
    value = np.array([cart_value(c) for c in contexts])
    reward = lambda a: np.where(a == 5, 0.1 * value, 0.0)  # noqa: E731
    per_value = _learn_linucb(contexts, reward, per_value=True)
    plain = _learn_linucb(contexts, reward, per_value=False)
    assert per_value > 0.95 and plain < 0.85, (per_value, plain)


def test_learner_policy_options():
    contexts, mask, _ = _carts(50)
    greedy = LearnerPolicy("lints", seed=0, greedy=True)
    p = greedy.probabilities_batch(contexts, mask)
    np.testing.assert_array_equal(p.max(axis=1), 1.0)
    np.testing.assert_array_equal(
        p.argmax(axis=1),
        greedy.learner.greedy_batch(FeatureBuilder().transform_many(contexts), mask),
    )
    ready = make_learner("linucb", greedy.action_names, FeatureBuilder().feature_names)
    assert LearnerPolicy(ready).learner is ready
    with pytest.raises(ValueError, match="feature_names"):
        LearnerPolicy(make_learner("linucb", greedy.action_names, ["x"]))
    with pytest.raises(ValueError, match="propensity_floor"):
        LearnerPolicy("linucb", propensity_floor=0.0)
    with pytest.raises(ValueError, match="name"):
        LearnerPolicy("nonsense")


def test_propensity_floor_changes_what_the_learner_is_told_not_the_decision():
    contexts, _mask, _truth = _carts(60)
    seen = []
    policy = LearnerPolicy("linucb", propensity_floor=0.5)
    policy.learner.update_batch = lambda X, a, p, r: seen.append(p.copy())
    probs = np.full(60, 0.1)
    probs[:10] = 0.9
    policy.update_batch(contexts, np.zeros(60, dtype=int), probs, np.zeros(60))
    np.testing.assert_array_equal(seen[0], np.where(probs > 0.5, probs, 0.5))
