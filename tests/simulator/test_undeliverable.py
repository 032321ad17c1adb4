"""An action the shopper cannot receive (no opted-in channel) has exactly the effect of ``none``."""

import gymnasium as gym
import numpy as np

import simulator  # noqa: F401  (registers CartRecovery-v0)
from simulator import ACTION_NAMES, oracle_action

SMALL = {"n_shoppers": 300, "n_items": 120}  # few shoppers: they come back often, so state matters
NONE = ACTION_NAMES.index("none")
OUTCOME = (
    "converted",
    "revenue",
    "coupon_cost",
    "profit",
    "contact_cost",
    "purchase_delay_hours",
    "purchase_probability",
)


def _state_arrays(world):
    """Every array of the shoppers' state, the event stores' columns included."""
    st = world.shoppers
    out = {k: v.copy() for k, v in vars(st).items() if isinstance(v, np.ndarray)}
    for name, store in (("orders", st.orders), ("contacts", st.contacts)):
        out[f"{name}.n"] = np.array(store.n)
        out[f"{name}.shopper"] = store.shopper[: store.n].copy()
        out.update({f"{name}.{c}": col[: store.n].copy() for c, col in store.columns.items()})
    return out


def _assert_same_state(a, b):
    sa, sb = _state_arrays(a), _state_arrays(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


def _pick(info, rng):
    """An undeliverable action when the cart has one (else a shared random action), and its twin."""
    blocked = np.flatnonzero(info["action_mask"] == 0)
    if len(blocked):
        return int(rng.choice(blocked)), NONE
    a = int(rng.integers(len(ACTION_NAMES)))
    return a, a


def test_single_env_undeliverable_action_earns_exactly_nones_outcome():
    sent, twin = gym.make("CartRecovery-v0", **SMALL), gym.make("CartRecovery-v0", **SMALL)
    obs_a, info_a = sent.reset(seed=7)
    obs_b, info_b = twin.reset(seed=7)
    rng = np.random.default_rng(0)
    undelivered = 0
    for _ in range(3000):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert info_a["context"] == info_b["context"]
        np.testing.assert_array_equal(info_a["expected_reward"], info_b["expected_reward"])
        a, b = _pick(info_a, rng)
        _, reward_a, _, _, step_a = sent.step(a)
        _, reward_b, _, _, step_b = twin.step(b)
        assert reward_a == reward_b
        assert {k: step_a[k] for k in OUTCOME} == {k: step_b[k] for k in OUTCOME}
        assert step_a["delivered"] == bool(info_a["action_mask"][a]) and step_b["delivered"]
        if not step_a["delivered"]:
            undelivered += 1
            assert step_a["contact_cost"] == 0.0 and step_a["coupon_cost"] == 0.0
        obs_a, info_a = sent.reset()
        obs_b, info_b = twin.reset()
    assert undelivered > 300
    _assert_same_state(sent.unwrapped.world, twin.unwrapped.world)


def test_vector_env_undeliverable_actions_earn_exactly_nones_outcome():
    n = 256

    def make():
        return gym.make_vec(
            "CartRecovery-v0", num_envs=n, vectorization_mode="vector_entry_point", **SMALL
        )

    sent, twin = make(), make()
    _, info_a = sent.reset(seed=3)
    _, info_b = twin.reset(seed=3)
    rng = np.random.default_rng(1)
    undelivered = 0
    for _ in range(15):
        np.testing.assert_array_equal(info_a["expected_reward"], info_b["expected_reward"])
        pairs = np.array([_pick({"action_mask": m}, rng) for m in info_a["action_mask"]])
        obs_a, reward_a, _, _, info_a = sent.step(pairs[:, 0])
        obs_b, reward_b, _, _, info_b = twin.step(pairs[:, 1])
        np.testing.assert_array_equal(reward_a, reward_b)
        np.testing.assert_array_equal(obs_a, obs_b)
        fa, fb = info_a["final_info"], info_b["final_info"]
        for key in OUTCOME:
            np.testing.assert_array_equal(fa[key], fb[key], err_msg=key)
        blocked = pairs[:, 0] != pairs[:, 1]
        np.testing.assert_array_equal(fa["delivered"], ~blocked)
        assert fb["delivered"].all() and (fa["contact_cost"][blocked] == 0).all()
        undelivered += blocked.sum()
    assert undelivered > 300
    _assert_same_state(sent.unwrapped.world, twin.unwrapped.world)


def test_expected_reward_of_an_undeliverable_action_is_nones_so_argmax_is_the_oracle():
    env = gym.make("CartRecovery-v0", **SMALL)
    _, info = env.reset(seed=2)
    rng = np.random.default_rng(2)
    blocked_carts = 0
    for _ in range(2000):
        er, mask = info["expected_reward"], info["action_mask"]
        np.testing.assert_array_equal(er[mask == 0], np.full((mask == 0).sum(), er[NONE]))
        assert int(np.argmax(er)) == oracle_action(info)
        blocked_carts += (mask == 0).any()
        env.step(int(rng.integers(len(ACTION_NAMES))))
        _, info = env.reset()
    assert blocked_carts > 200

    envs = gym.make_vec(
        "CartRecovery-v0", num_envs=512, vectorization_mode="vector_entry_point", **SMALL
    )
    _, info = envs.reset(seed=2)
    for _ in range(10):
        er, mask = info["expected_reward"], info["action_mask"]
        np.testing.assert_array_equal(np.where(mask == 0, er[:, [NONE]], er), er)
        np.testing.assert_array_equal(er.argmax(axis=1), oracle_action(info))
        _, _, _, _, info = envs.step(rng.integers(len(ACTION_NAMES), size=512))
