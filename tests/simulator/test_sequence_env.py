"""CartRecoverySequence-v0: the gym contract, the single-touch case, and the DP truth against
Monte Carlo rollouts."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import simulator  # noqa: F401  (registers the envs)
from simulator.shop.sequence_model import (
    SequenceConfig,
    fixed_flow_probabilities,
    policy_value,
    solve,
)

SMALL = {"n_shoppers": 800, "n_items": 100}


def _vec(n, seed, **kw):
    envs = gym.make_vec(
        "CartRecoverySequence-v0",
        num_envs=n,
        vectorization_mode="vector_entry_point",
        **{**SMALL, **kw},
    )
    obs, info = envs.reset(seed=seed)
    return envs, obs, info


def _rollout(envs, info, choose, episodes):
    """Run until ``episodes`` flows ended; returns and optimal values at their first touch."""
    n = envs.num_envs
    start_value = np.where(info["touch"] == 1, info["optimal_value"], np.nan)
    returns, starts = [], []
    while len(returns) < episodes:
        a = choose(info)
        start_before = start_value.copy()
        _, _, term, _, info = envs.step(a)
        for i in np.flatnonzero(term):
            returns.append(info["final_info"]["episode_return"][i])
            starts.append(start_before[i])
        start_value = np.where(term, info["optimal_value"], start_value)
        assert start_value.shape == (n,)
    return np.array(returns), np.array(starts)


def _greedy(info):
    """The optimal action of every slot (from the exact Q)."""
    return np.where(info["action_mask"].astype(bool), info["q_optimal"], -np.inf).argmax(axis=1)


def test_check_env_is_clean():
    env = gym.make("CartRecoverySequence-v0", **SMALL)
    check_env(env.unwrapped, skip_render_check=True)


def test_contract_of_reset_and_step():
    env = gym.make("CartRecoverySequence-v0", **SMALL)
    _, info = env.reset(seed=3)
    assert info["context"]["recovery"] == {"touch": 1, "previous": []}
    assert info["context"]["session"]["minutes_since_abandon"] == 60.0
    mask = info["action_mask"].astype(bool)
    assert info["optimal_value"] == pytest.approx(info["q_optimal"][mask].max())
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(0)
        steps += 1
        if terminated:
            break
        prev = info["context"]["recovery"]["previous"]
        assert info["context"]["recovery"]["touch"] == steps + 1
        assert [p["minutes_after_abandon"] for p in prev] == [60.0, 720.0][:steps]
        assert all(p["action"] == "none" and not p["opened"] for p in prev)
    assert steps <= 3 and not truncated


def test_one_touch_reproduces_single_step_expected_rewards():
    """One touch at the cart's own delay: q_optimal is CartRecovery-v0's expected_reward."""
    single = gym.make_vec(
        "CartRecovery-v0", num_envs=300, vectorization_mode="vector_entry_point", **SMALL
    )
    _, info_single = single.reset(seed=11)
    _envs, _, info = _vec(
        300, 11, sequence={"touch_minutes": (60.0,), "first_touch_from_cart": True}, block_size=300
    )
    # Every action, deliverable or not: one the shopper cannot receive has none's outcome in
    # both envs.
    blocked = ~info_single["action_mask"].astype(bool)
    assert blocked.sum() > 50
    np.testing.assert_array_equal(info["action_mask"], info_single["action_mask"])
    np.testing.assert_allclose(
        info["q_optimal"], info_single["expected_reward"], rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        info["expected_reward"], info_single["expected_reward"], rtol=1e-12, atol=1e-12
    )
    ctx, ctx_single = info["context"][5], info_single["context"][5]
    assert ctx["cart"] == ctx_single["cart"] and ctx["timestamp"] == pytest.approx(
        ctx_single["timestamp"]
    )


def test_dp_optimal_value_matches_monte_carlo_of_the_optimal_policy():
    envs, _, info = _vec(512, 5)
    returns, starts = _rollout(envs, info, _greedy, 30_000)
    diff = returns - starts
    se = diff.std() / np.sqrt(len(diff))
    assert abs(diff.mean()) < 4 * se and se < 0.1, (diff.mean(), se)


def test_q_of_a_suboptimal_first_action_matches_monte_carlo():
    """Q(s, a) for a = coupon_20 at touch 1, optimal afterwards."""
    envs, _, info = _vec(512, 6)
    n = envs.num_envs
    start = np.where(info["touch"] == 1, info["q_optimal"][:, 4], np.nan)
    returns, starts = [], []
    while len(returns) < 30_000:
        a = np.where(info["touch"] == 1, 4, _greedy(info))
        before = start.copy()
        _, _, term, _, info = envs.step(a)
        for i in np.flatnonzero(term):
            returns.append(info["final_info"]["episode_return"][i])
            starts.append(before[i])
        start = np.where(term, info["q_optimal"][:, 4], start)
    diff = np.array(returns) - np.array(starts)
    se = diff.std() / np.sqrt(len(diff))
    assert abs(diff.mean()) < 4 * se and se < 0.1, (diff.mean(), se)
    assert n == 512


def test_policy_value_of_flows_and_optimum():
    from simulator.shop.config import SimConfig
    from simulator.shop.sequence_model import CartParams, channel_of_actions

    rng = np.random.default_rng(0)
    n = 200
    params = CartParams(
        rng.integers(0, 4, n),
        rng.uniform(20, 200, n),
        rng.uniform(5, 60, n),
        rng.uniform(0, 1, n),
        rng.uniform(0, 0.5, n),
        rng.uniform(0, 2, n),
        rng.integers(0, 6, n),
        channel_of_actions(rng.random((n, 3)) < 0.7),
        np.tile([60.0, 720.0, 1440.0], (n, 1)),
    )
    mask = np.ones((n, 7), dtype=bool)
    cfg, seq = SimConfig(n_shoppers=10), SequenceConfig()
    tables = solve(params, mask, cfg, seq)
    optimum = tables.q[0][:, 0].max(axis=1)
    greedy = [np.eye(7)[q.argmax(axis=2)] for q in tables.q]
    np.testing.assert_allclose(policy_value(tables, greedy), optimum, rtol=1e-12)
    for flow in ([6, 0, 0], [6, 6, 6], [6, 6, 3], [0, 0, 0]):
        value = policy_value(tables, fixed_flow_probabilities([np.full(n, a) for a in flow], mask))
        assert np.all(value <= optimum + 1e-12)
    none = policy_value(tables, fixed_flow_probabilities([np.zeros(n, dtype=np.int64)] * 3, mask))
    shorter = solve(params, mask, cfg, seq, restrict_touches=1).q[0][:, 0].max(axis=1)
    assert np.all(none <= shorter + 1e-12) and np.all(shorter <= optimum + 1e-12)


def test_unsubscribes_remove_the_channel_and_grow_with_touches():
    envs, _, info = _vec(
        256, 9, sequence={"unsubscribe_base": {"email": 0.2, "sms": 0.2, "push": 0.2}}
    )
    unsub_by_touch = np.zeros(4)
    sent_by_touch = np.zeros(4)
    for _ in range(60):
        _, _, term, _, info2 = envs.step(np.full(256, 6))
        fin = info2["final_info"]
        t = info["touch"]
        np.add.at(sent_by_touch, t, fin["delivered"])  # undeliverable: none, no risk
        np.add.at(unsub_by_touch, t, term & fin["unsubscribed"])
        info = info2
    rate = unsub_by_touch / np.maximum(sent_by_touch, 1)
    assert rate[1] == 0 and rate[3] > rate[2] > 0.05
    world = envs.unwrapped.world if hasattr(envs, "unwrapped") else envs.world
    assert world.population.channels.mean() < 0.9


def test_vector_env_is_seeded():
    a = _vec(16, 4)[1]
    b = _vec(16, 4)[1]
    np.testing.assert_array_equal(a, b)


def test_undeliverable_actions_are_played_as_none():
    """Same carts, same uniforms: sending an undeliverable action at every touch gives exactly the
    rewards and histories of sending none there (and the deliverable actions otherwise)."""

    def play(seed, replace_blocked):
        envs, _, info = _vec(64, seed)
        rewards, histories, delivered = [], [], []
        for _step in range(12):
            mask = info["action_mask"].astype(bool)
            wanted = np.full(64, 5)  # time_limited_offer: sms only, often undeliverable
            a = np.where(mask[:, 5], wanted, 0) if replace_blocked else wanted
            _, r, _term, _, info = envs.step(a)
            rewards.append(r)
            delivered.append(info["final_info"]["delivered"])
            histories.append([c["recovery"]["previous"] for c in info["context"].freeze()])
        return np.array(rewards), histories, np.array(delivered)

    r_blocked, h_blocked, d_blocked = play(2, False)
    r_none, h_none, d_none = play(2, True)
    assert (~d_blocked).sum() > 50 and d_none.all()
    np.testing.assert_array_equal(r_blocked, r_none)
    assert h_blocked == h_none


def test_single_env_plays_the_flows_of_the_vector_env_with_one_slot():
    """The single env's scalar path against the vector env's batch path, touch by touch (same
    shop, same blocks, same uniforms); the single env writes ended flows to the shop in batches,
    which can differ from one-by-one writes only by rounding."""
    single = gym.make("CartRecoverySequence-v0", **SMALL)
    vector = gym.make_vec(
        "CartRecoverySequence-v0", num_envs=1, vectorization_mode="vector_entry_point", **SMALL
    )
    obs, info = single.reset(seed=8)
    vobs, vinfo = vector.reset(seed=8)
    rng = np.random.default_rng(0)
    ended = undelivered = 0
    for _ in range(1500):  # several blocks of 256 carts
        np.testing.assert_allclose(obs, vobs[0], rtol=1e-6)
        np.testing.assert_allclose(info["q_optimal"], vinfo["q_optimal"][0], rtol=1e-9, atol=1e-12)
        assert info["context"] == vinfo["context"][0] and info["touch"] == vinfo["touch"][0]
        a = int(rng.integers(7))
        obs, r, term, _, info = single.step(a)
        vobs, vr, vterm, _, vinfo = vector.step(np.array([a]))
        assert r == pytest.approx(vr[0], rel=1e-9, abs=1e-12) and term == vterm[0]
        fin = vinfo["final_info"]
        for key in ("converted", "prompted", "unsubscribed", "delivered"):
            assert info[key] == fin[key][0], key
        undelivered += not info["delivered"]
        if term:
            ended += 1
            assert info["episode_return"] == pytest.approx(fin["episode_return"][0], rel=1e-9)
            obs, info = single.reset()
    assert ended > 500 and undelivered > 20
