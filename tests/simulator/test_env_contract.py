"""CartRecovery-v0 honours Gymnasium's contracts: spaces, seeding, info, errors."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import simulator
from simulator import ACTION_NAMES, SHOPPER_TYPES, CartRecoveryEnv, SimConfig

SMALL = {"n_shoppers": 400, "n_items": 120}


def test_check_env_passes_without_warnings():
    env = gym.make("CartRecovery-v0", **SMALL).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []


def test_spaces_and_action_names():
    env = gym.make("CartRecovery-v0", **SMALL)
    assert env.action_space == gym.spaces.Discrete(7)
    assert env.unwrapped.action_names == ACTION_NAMES
    assert env.unwrapped.action_names == (
        "none",
        "recommendation",
        "coupon_5",
        "coupon_10",
        "coupon_20",
        "time_limited_offer",
        "recall_message",
    )
    box = env.observation_space
    assert (
        box.dtype == np.float32 and np.all(np.isfinite(box.low)) and np.all(np.isfinite(box.high))
    )
    assert box.shape == (len(env.unwrapped.observation_names),)


def _rollout(seed, n=300, actions_seed=1):
    env = gym.make("CartRecovery-v0", **SMALL)
    rng = np.random.default_rng(actions_seed)
    out = []
    obs, info = env.reset(seed=seed)
    for _ in range(n):
        a = int(rng.integers(0, 7))
        _, reward, terminated, truncated, step_info = env.step(a)
        assert terminated and not truncated
        out.append(
            (
                obs.tobytes(),
                info["context"]["user_id"],
                info["context"]["timestamp"],
                tuple(info["expected_reward"]),
                reward,
                step_info["converted"],
            )
        )
        obs, info = env.reset()
    return out


def test_same_seed_same_rollout_and_different_seed_differs():
    first, again, other = _rollout(7), _rollout(7), _rollout(8)
    assert first == again
    assert first != other


def test_reset_with_seed_rebuilds_the_shop():
    env = gym.make("CartRecovery-v0", **SMALL)
    _, info_a = env.reset(seed=3)
    for _ in range(50):
        env.step(6)
        env.reset()
    _, info_b = env.reset(seed=3)
    assert info_a["context"] == info_b["context"]
    np.testing.assert_array_equal(info_a["expected_reward"], info_b["expected_reward"])


def test_info_contents_on_reset_and_step():
    env = gym.make("CartRecovery-v0", **SMALL)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["shopper_type"] in SHOPPER_TYPES
    assert info["expected_reward"].shape == (7,) and np.all(np.isfinite(info["expected_reward"]))
    assert info["action_mask"].dtype == np.int8 and info["action_mask"][0] == 1
    ctx = info["context"]
    assert set(ctx) == {"user_id", "timestamp", "cart", "session", "channels", "history"}
    assert ctx["cart"] and all(
        set(line) == {"item_id", "category", "price", "quantity"} for line in ctx["cart"]
    )
    assert set(ctx["channels"]) == {"email", "sms", "push"}
    assert {
        "orders",
        "contacts",
        "sessions",
        "product_views",
        "carts_abandoned",
        "first_seen",
    } <= set(ctx["history"])
    _, reward, _, _, step_info = env.step(2)
    for key in (
        "context",
        "shopper_type",
        "expected_reward",
        "action_mask",
        "converted",
        "revenue",
        "coupon_cost",
        "profit",
        "contact_cost",
        "purchase_delay_hours",
        "delivered",
    ):
        assert key in step_info
    assert reward == step_info["profit"]
    assert step_info["delivered"] is bool(info["action_mask"][2])


def test_hidden_type_never_in_observation_or_context():
    env = gym.make("CartRecovery-v0", **SMALL)
    _, info = env.reset(seed=0)
    text = repr(info["context"])
    assert all(t not in text for t in SHOPPER_TYPES)


def test_masks_follow_channel_opt_ins():
    env = gym.make("CartRecovery-v0", **SMALL)
    env.reset(seed=0)
    for _ in range(200):
        _, info = env.reset()
        ch = info["context"]["channels"]
        for a, name in enumerate(ACTION_NAMES):
            needed = simulator.ACTION_CHANNELS[name]
            expected = name == "none" or any(ch[c] for c in needed)
            assert bool(info["action_mask"][a]) == expected, (name, ch)


def test_histories_never_show_the_future():
    env = gym.make("CartRecovery-v0", **SMALL)
    env.reset(seed=5)
    for i in range(600):
        _, info = env.reset()
        ctx = info["context"]
        for event in ctx["history"]["orders"] + ctx["history"]["contacts"]:
            assert event["timestamp"] <= ctx["timestamp"]
        env.step(i % 7)


@pytest.mark.parametrize("bad", [-1, 7, 2.5, "coupon_5", None])
def test_out_of_range_actions_raise_value_error_naming_action(bad):
    env = gym.make("CartRecovery-v0", **SMALL).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action =="):
        env.step(bad)


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        CartRecoveryEnv(**SMALL).step(0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"n_shopers": 10}, "unknown key 'n_shopers'"),
        ({"n_shoppers": -5}, "n_shoppers == -5"),
        ({"type_mixture": {"hesitant": 0.5, "impulsive": 0.3}}, "type_mixture sums to 0.8"),
        ({"type_mixture": {"bargain_hunter": 1.0}}, "unknown shopper type 'bargain_hunter'"),
        ({"contact_cost": float("nan")}, "contact_cost == nan"),
        ({"mixture_shift": {"at_episode": 10}}, "must have 'at_episode' and 'mixture'"),
    ],
)
def test_bad_config_raises_value_error_naming_parameter(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        gym.make("CartRecovery-v0", **overrides)


def test_config_round_trip():
    cfg = SimConfig(n_shoppers=300)
    assert cfg.replace(fatigue=False).fatigue is False
    assert SimConfig.from_dict({"n_shoppers": 300}) == cfg
