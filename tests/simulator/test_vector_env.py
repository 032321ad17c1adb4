"""The native vector env: Gymnasium's vector API, same-step autoreset, agreement with one env."""

import gymnasium as gym
import numpy as np
import pytest

from simulator import SHOPPER_TYPES, ContextBatch, oracle_action

SMALL = {"n_shoppers": 2000, "n_items": 200}


def make(n=64, **kw):
    return gym.make_vec(
        "CartRecovery-v0", num_envs=n, vectorization_mode="vector_entry_point", **{**SMALL, **kw}
    )


def test_reset_and_step_shapes_and_same_step_autoreset():
    envs = make(32)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (32, 24) and obs.dtype == np.float32
    assert envs.observation_space.contains(obs)
    assert isinstance(info["context"], ContextBatch) and len(info["context"]) == 32
    assert info["expected_reward"].shape == (32, 7)
    actions = oracle_action(info)
    _obs2, reward, terminated, truncated, info2 = envs.step(actions)
    assert terminated.all() and not truncated.any()
    np.testing.assert_array_equal(info2["final_obs"], obs)
    final = info2["final_info"]
    np.testing.assert_array_equal(final["profit"], reward)
    assert final["converted"].dtype == bool
    assert np.all((final["purchase_probability"] > 0) & (final["purchase_probability"] < 1))
    assert info["context"].user_ids == [c["user_id"] for c in info["context"]]
    np.testing.assert_array_equal(
        info["context"].timestamps, [c["timestamp"] for c in info["context"]]
    )
    # the returned observation belongs to the next carts, not the resolved ones
    assert info2["context"][0]["timestamp"] > info["context"][31]["timestamp"]


def test_vector_env_is_deterministic_for_a_seed():
    def run(seed):
        envs = make(16)
        envs.reset(seed=seed)
        out = []
        for step in range(20):
            _, reward, _, _, _ = envs.step(np.full(16, step % 7))
            out.append(reward.copy())
        return np.concatenate(out)

    np.testing.assert_array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))


def test_contexts_are_the_same_records_as_the_single_env_schema():
    envs = make(8)
    _, info = envs.reset(seed=1)
    single = gym.make("CartRecovery-v0", **SMALL)
    _, sinfo = single.reset(seed=1)
    ctx = info["context"][3]
    assert set(ctx) == set(sinfo["context"])
    assert set(ctx["session"]) == set(sinfo["context"]["session"])
    assert info["context"][-1] == info["context"][7]
    assert len(info["context"][2:5]) == 3
    with pytest.raises(IndexError):
        info["context"][8]


def test_bad_actions_raise_value_error():
    envs = make(4)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions\[2\] == 9"):
        envs.step(np.array([0, 1, 9, 2]))
    with pytest.raises(ValueError, match="must be 4 integers"):
        envs.step(np.array([0, 1]))


def test_vector_and_single_env_agree_on_the_truth_by_type():
    """Both envs run the same model: per-type mean expected reward of each action agrees."""

    def means(er, types):
        return np.array([er[types == t].mean(axis=0) for t in SHOPPER_TYPES])

    envs = make(512)
    _, info = envs.reset(seed=11)
    er_v, ty_v = [], []
    rng = np.random.default_rng(0)
    for _ in range(16):
        er_v.append(info["expected_reward"])
        ty_v.append(info["shopper_type"])
        _, _, _, _, info = envs.step(rng.integers(0, 7, 512))
    single = gym.make("CartRecovery-v0", **SMALL)
    _, sinfo = single.reset(seed=11)  # same world: catalogue and population
    er_s, ty_s = [], []
    for _ in range(8192):
        er_s.append(sinfo["expected_reward"])
        ty_s.append(sinfo["shopper_type"])
        single.step(int(rng.integers(0, 7)))
        _, sinfo = single.reset()
    mv = means(np.concatenate(er_v), np.concatenate(ty_v))
    ms = means(np.array(er_s), np.array(ty_s))
    # per type and action, the two estimates agree within 0.45 USD (sampling noise of ~2k carts
    # per type)
    np.testing.assert_allclose(mv, ms, atol=0.45)


def test_reset_seeds_np_random_like_gymnasium_vector_envs():
    """``reset(seed=s)`` goes through ``VectorEnv.reset``: ``np_random_seed`` is ``s`` and the shop
    is built from ``np_random``, the same generator Gymnasium's seeding gives for ``s``."""
    from gymnasium.utils import seeding

    envs = make(8)
    obs, _ = envs.reset(seed=123)
    assert envs.np_random_seed == 123
    assert envs.unwrapped.world.rng is envs.np_random
    fresh, fresh_seed = seeding.np_random(123)
    assert fresh_seed == 123
    twin = make(8)
    twin.unwrapped.np_random = fresh  # an env built from Gymnasium's generator for 123 ...
    twin_obs, _ = twin.reset()  # ... and no seed: builds its shop from that generator
    np.testing.assert_array_equal(obs, twin_obs)
    assert envs.np_random.bit_generator.state == twin.unwrapped.np_random.bit_generator.state
    envs.reset(seed=124)
    assert envs.np_random_seed == 124 and envs.unwrapped.world.rng is envs.np_random
    envs.reset()  # continuing does not reseed
    assert envs.np_random_seed == 124


def test_reset_without_a_seed_first_time_builds_an_unseeded_shop():
    envs = make(4)
    obs, _ = envs.reset()
    assert obs.shape == (4, 24)
    assert isinstance(envs.np_random_seed, int) and envs.unwrapped.world.rng is envs.np_random
