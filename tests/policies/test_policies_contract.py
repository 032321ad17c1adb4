"""Every registered policy returns valid distributions over the eligible actions, on one context
and in batch, before and after learning, from contexts and from logged features."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from engine.features import FeatureBuilder
from policies import Policy, available_policies, make_policy
from simulator import CartRecoveryVectorEnv

RANDOMISED = {"lints"}


@functools.lru_cache(maxsize=2)
def simulated_batch(n: int = 200, seed: int = 0):
    """(contexts, eligible (n, 7) bool, truth (n, 7)) of ``n`` simulated carts; some rows have only
    ``none`` eligible, as for shoppers without opt-ins."""
    env = CartRecoveryVectorEnv(num_envs=n, n_shoppers=1500, n_items=200)
    _, info = env.reset(seed=seed)
    _, _, _, _, info = env.step(np.random.default_rng(seed).integers(0, 7, n))  # some history first
    return (
        tuple(info["context"][:n]),
        info["action_mask"].astype(bool),
        info["expected_reward"].copy(),
    )  # Monte Carlo propensities: batch and single calls draw different samples


def _truth_for(policy, truth):
    return truth if policy.needs_truth else None


def _assert_distributions(p, mask):
    assert p.shape == mask.shape
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert np.all(p[~mask] == 0.0), "mass on an ineligible action"
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("name", available_policies())
def test_probabilities_are_distributions_over_eligible_actions(name):
    contexts, mask, truth = simulated_batch()
    policy = make_policy(name, seed=3)
    assert isinstance(policy, Policy) and policy.name == name
    assert (~mask[:, 1:]).all(axis=1).any(), (
        "test data should include carts where only 'none' is eligible"
    )
    batch = policy.probabilities_batch(contexts, mask, _truth_for(policy, truth))
    _assert_distributions(batch, mask)
    single = np.stack(
        [
            policy.probabilities(
                c, mask[i], None if truth is None else (truth[i] if policy.needs_truth else None)
            )
            for i, c in enumerate(contexts[:40])
        ]
    )
    _assert_distributions(single, mask[:40])
    if name not in RANDOMISED:
        np.testing.assert_allclose(single, batch[:40], atol=1e-6)
    # rows with only 'none' eligible put all mass on it
    only_none = (~mask[:, 1:]).all(axis=1)
    np.testing.assert_array_equal(batch[only_none, 0], 1.0)


@pytest.mark.parametrize("name", available_policies())
def test_probabilities_stay_valid_after_learning(name):
    contexts, mask, truth = simulated_batch()
    policy = make_policy(name, seed=1)
    rng = np.random.default_rng(0)
    p = policy.probabilities_batch(contexts, mask, _truth_for(policy, truth))
    actions = np.array([rng.choice(7, p=row) for row in p])
    rewards = truth[np.arange(len(actions)), actions] + rng.normal(0, 5, len(actions))
    policy.update_batch(
        contexts, actions, p[np.arange(len(actions)), actions], rewards, _truth_for(policy, truth)
    )
    policy.update(
        contexts[0],
        int(actions[0]),
        float(p[0, actions[0]]),
        float(rewards[0]),
        _truth_for(policy, truth[0]),
    )
    _assert_distributions(
        policy.probabilities_batch(contexts, mask, _truth_for(policy, truth)), mask
    )


ORACLES = ("oracle", "seq:myopic-oracle")  # they decide from the truth, never from features


@pytest.mark.parametrize("name", [n for n in available_policies() if n not in ORACLES])
def test_feature_probabilities_agree_with_context_probabilities(name):
    contexts, mask, _truth = simulated_batch()
    builder = FeatureBuilder()
    X = builder.transform_many(contexts)
    logged_names = [f"f_{n}" for n in builder.feature_names]  # as read_log names the columns
    policy = make_policy(name, seed=2)
    from_features = policy.feature_probabilities(
        X[:, ::-1], logged_names[::-1], mask
    )  # column order is free
    _assert_distributions(from_features, mask)
    if name not in RANDOMISED and not policy.needs_truth:
        np.testing.assert_allclose(
            from_features, policy.probabilities_batch(contexts, mask), atol=1e-6
        )


def test_feature_probabilities_name_missing_features():
    _, mask, _ = simulated_batch()
    with pytest.raises(ValueError, match="cart_value_log"):
        make_policy("rule").feature_probabilities(np.zeros((len(mask), 1)), ["f_other"], mask)


@pytest.mark.parametrize("name", ORACLES)
def test_oracle_cannot_decide_from_features_or_without_truth(name):
    contexts, mask, _ = simulated_batch()
    oracle = make_policy(name)
    with pytest.raises(NotImplementedError):
        oracle.feature_probabilities(np.zeros((len(mask), 2)), ["a", "b"], mask)
    with pytest.raises(ValueError, match="needs truth"):
        oracle.probabilities(contexts[0], mask[0])
    with pytest.raises(ValueError, match="needs truth"):
        oracle.probabilities_batch(contexts, mask)


def test_registry_rejects_unknown_names_listing_the_known_ones():
    with pytest.raises(ValueError) as info:
        make_policy("thompson")
    message = str(info.value)
    assert "'thompson'" in message
    for name in ("none", "rule", "uniform", "oracle", "full-information", "vw", "linucb", "lints"):
        assert f"'{name}'" in message


def test_registry_names_cover_the_brief():
    expected = {
        "none",
        "uniform",
        "rule",
        "oracle",
        "full-information",
        "vw",
        "vw-epsilon",
        "vw-squarecb",
        "vw-bag",
        "vw-cover",
        "vw-rnd",
        "linucb",
        "lints",
    }
    assert expected <= set(available_policies())
    assert {
        f"static:{a}"
        for a in (
            "recommendation",
            "coupon_5",
            "coupon_10",
            "coupon_20",
            "time_limited_offer",
            "recall_message",
        )
    } <= set(available_policies())


def test_bad_eligibility_is_a_value_error():
    contexts, mask, _truth = simulated_batch()
    for name in ("none", "uniform", "rule", "linucb", "full-information"):
        policy = make_policy(name)
        with pytest.raises(ValueError, match="eligible"):
            policy.probabilities_batch(contexts, np.zeros_like(mask))
        with pytest.raises(ValueError, match="eligible"):
            policy.probabilities_batch(contexts, mask[:, :5])
