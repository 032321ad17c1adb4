"""The training loop: sampling, determinism, baselines recomputed independently, the oracle as
an upper bound, and learners beating the static baselines on a fixed seed."""

from __future__ import annotations

import numpy as np
import pytest

from policies import Policy, make_policy
from simulator import CartRecoveryVectorEnv
from simulator.training import run_policy
from simulator.training.loop import LAST_SHARE

SMALL = {"n_shoppers": 1500, "n_items": 200}


def test_none_policy_scores_match_an_independent_replay_of_the_env():
    carts, batch = 1000, 128
    result = run_policy(
        make_policy("none"), carts, seed=5, config=SMALL, batch=batch, progress=False
    )
    # replay: the same shop with 'none' everywhere gives the same carts and truth
    env = CartRecoveryVectorEnv(num_envs=batch, **SMALL)
    _, info = env.reset(seed=5)
    truth, mask = [], []
    while sum(len(t) for t in truth) < carts:
        truth.append(info["expected_reward"].copy())
        mask.append(info["action_mask"].astype(bool))
        _, _, _, _, info = env.step(np.zeros(batch, dtype=np.int64))
    truth, mask = np.concatenate(truth)[:carts], np.concatenate(mask)[:carts]
    last = slice(int(carts * (1 - LAST_SHARE)), carts)
    assert result.value_last == pytest.approx(truth[last, 0].mean(), abs=1e-12)
    assert result.none == pytest.approx(truth[last, 0].mean(), abs=1e-12)
    assert result.oracle == pytest.approx(
        np.where(mask, truth, -np.inf)[last].max(axis=1).mean(), abs=1e-12
    )
    statics = np.where(mask, truth, truth[:, :1])[last].mean(axis=0)
    assert result.best_static == pytest.approx(statics.max(), abs=1e-12)
    assert result.static["coupon_10"] == pytest.approx(statics[3], abs=1e-12)
    assert result.conversion_last == pytest.approx(result.trace["converted"][last].mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_oracle_is_an_upper_bound_on_every_seed(seed):
    for name in ("uniform", "rule", "linucb", "static:coupon_10"):
        r = run_policy(
            make_policy(name, seed=seed), 1200, seed=seed, config=SMALL, batch=100, progress=False
        )
        assert np.all(r.trace["value"] <= r.trace["oracle"] + 1e-12)
        assert np.all(r.trace["full_information"] <= r.trace["oracle"] + 1e-12)
        assert (
            max(r.value_last, r.none, r.best_static, r.rule, r.full_information) <= r.oracle + 1e-12
        )
    oracle = run_policy(
        make_policy("oracle"), 1200, seed=seed, config=SMALL, batch=100, progress=False
    )
    assert oracle.value_last == pytest.approx(oracle.oracle, abs=1e-12)


def test_static_and_rule_policies_score_what_their_shadow_says():
    r = run_policy(
        make_policy("static:recall_message"), 800, seed=3, config=SMALL, batch=64, progress=False
    )
    assert r.value_last == pytest.approx(r.static["recall_message"], abs=1e-12)
    rule = run_policy(make_policy("rule"), 800, seed=3, config=SMALL, batch=64, progress=False)
    assert rule.value_last == pytest.approx(rule.rule, abs=1e-12)


def test_runs_are_deterministic_for_a_seed_and_batch_one_works():
    a = run_policy(
        make_policy("lints", seed=4), 600, seed=4, config=SMALL, batch=50, progress=False
    )
    b = run_policy(
        make_policy("lints", seed=4), 600, seed=4, config=SMALL, batch=50, progress=False
    )
    np.testing.assert_array_equal(a.trace["action"], b.trace["action"])
    assert a.to_dict()["curve"] == b.to_dict()["curve"]
    online = run_policy(make_policy("linucb"), 150, seed=4, config=SMALL, batch=1, progress=False)
    assert online.batch == 1 and len(online.trace["action"]) == 150
    assert make_policy("linucb").learns and online.value_last <= online.oracle
    # a batch that does not divide the carts: the last partial batch is scored too
    odd = run_policy(make_policy("uniform"), 250, seed=4, config=SMALL, batch=100, progress=False)
    assert len(odd.trace["value"]) == 250 and odd.curve[-1]["carts"] == 250


class _Counting(Policy):
    """Records what the loop hands to a learning policy."""

    name = "counting"
    learns = True

    def __init__(self):
        super().__init__()
        self.seen = []

    def _probabilities(self, context, eligible, truth):
        return eligible.astype(float)

    def update_batch(self, contexts, actions, probabilities, rewards, truth=None):
        self.seen.append(
            (len(contexts), np.asarray(actions).copy(), np.asarray(probabilities).copy())
        )


def test_the_loop_updates_with_the_sampled_actions_and_their_propensities():
    policy = _Counting()
    r = run_policy(policy, 300, seed=1, config=SMALL, batch=64, progress=False)
    assert [n for n, _, _ in policy.seen] == [64, 64, 64, 64, 44]
    actions = np.concatenate([a for _, a, _ in policy.seen])
    np.testing.assert_array_equal(actions, r.trace["action"])
    probs = np.concatenate([p for _, _, p in policy.seen])
    expected = 1.0 / r.trace["mask"].sum(axis=1)  # uniform over eligible
    np.testing.assert_allclose(probs, expected)


def test_invalid_arguments_are_value_errors():
    with pytest.raises(ValueError, match="carts"):
        run_policy(make_policy("none"), 0, seed=0, progress=False)
    with pytest.raises(ValueError, match="batch"):
        run_policy(make_policy("none"), 10, seed=0, batch=0, progress=False)
    with pytest.raises(ValueError, match="policy"):
        run_policy("none", 10, seed=0, progress=False)


class _Broken(Policy):
    name = "broken"

    def _probabilities(self, context, eligible, truth):
        return np.ones(len(eligible))

    def probabilities_batch(self, contexts, eligible, truth=None):
        return np.ones(np.shape(eligible)) / 7.0  # mass on ineligible actions


def test_a_policy_putting_mass_on_ineligible_actions_is_refused():
    with pytest.raises(ValueError, match="broken"):
        run_policy(_Broken(), 300, seed=0, config=SMALL, progress=False)
