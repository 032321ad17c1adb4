"""The render_mode contract outside RL clients rely on (stable-baselines3's make_vec_env passes
``render_mode="rgb_array"``; Gymnasium's sync vector env passes ``render_mode=None``)."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import simulator  # noqa: F401  (registers CartRecovery-v0)
from simulator import CartRecoveryEnv, CartRecoveryVectorEnv

SMALL = {"n_shoppers": 400, "n_items": 120}
MODES = ["ansi", "rgb_array"]


def _check_env_warnings(env) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    return [str(w.message) for w in caught]


def _check_frame(mode, frame):
    if mode == "ansi":
        assert isinstance(frame, str) and "none" in frame
    else:
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[0] > 0 and frame.shape[1] > 0


def test_both_envs_declare_the_same_supported_modes():
    assert CartRecoveryEnv.metadata["render_modes"] == MODES
    assert CartRecoveryVectorEnv.metadata["render_modes"] == MODES
    assert CartRecoveryEnv.metadata["render_fps"] > 0


def test_make_with_render_mode_none_passes_check_env():
    env = gym.make("CartRecovery-v0", render_mode=None, **SMALL)
    assert env.unwrapped.render_mode is None
    assert _check_env_warnings(env.unwrapped) == []
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode=None"):
        assert env.render() is None


@pytest.mark.parametrize("mode", MODES)
def test_supported_modes_render_each_cart_before_and_after_step(mode):
    env = gym.make("CartRecovery-v0", render_mode=mode, **SMALL)
    assert env.unwrapped.render_mode == mode
    assert _check_env_warnings(env.unwrapped) == []
    env.reset(seed=0)
    before = env.render()
    _check_frame(mode, before)
    env.step(1)
    after = env.render()
    _check_frame(mode, after)
    if mode == "ansi":
        assert "chosen: recommendation" in after and "chosen" not in before
    else:
        assert not np.array_equal(before, after)  # the chosen action is marked


@pytest.mark.parametrize("mode", ["human", "video", "rgb", ""])
def test_unsupported_mode_is_a_value_error_naming_it(mode):
    with pytest.raises(ValueError, match=f"render_mode == {mode!r}, must be None or one of"):
        CartRecoveryEnv(render_mode=mode, **SMALL)
    with pytest.raises(ValueError, match=f"render_mode == {mode!r}"):
        CartRecoveryVectorEnv(2, render_mode=mode, **SMALL)


def test_make_with_an_unsupported_mode_raises_value_error():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gymnasium warns first that the mode is not declared
        with pytest.raises(ValueError, match="render_mode == 'video'"):
            gym.make("CartRecovery-v0", render_mode="video", **SMALL)


@pytest.mark.parametrize("mode", [None, "rgb_array"])
def test_make_vec_sync_mode_as_outside_rl_clients_call_it(mode):
    """What stable-baselines3's make_vec_env does: one gym.make per sub-env, with a render_mode."""
    envs = gym.make_vec(
        "CartRecovery-v0", num_envs=4, vectorization_mode="sync", render_mode=mode, **SMALL
    )
    obs, info = envs.reset(seed=0)
    assert obs.shape == (4, 24) and envs.observation_space.contains(obs)
    envs.action_space.seed(0)
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    assert (
        reward.shape == (4,)
        and np.all(np.isfinite(reward))
        and terminated.all()
        and not truncated.any()
    )
    assert info["delivered"].dtype == bool and info["expected_reward"].shape == (4, 7)
    for _ in range(4):  # Gymnasium's default next-step autoreset, then more carts
        obs, reward, *_ = envs.step(envs.action_space.sample())
        assert envs.observation_space.contains(obs) and np.all(np.isfinite(reward))
    if mode is None:
        with pytest.warns(UserWarning, match="render_mode=None"):
            frames = envs.render()
        assert all(f is None for f in frames)
    else:
        frames = envs.render()
        assert len(frames) == 4
        for frame in frames:
            _check_frame(mode, frame)
    envs.close()


@pytest.mark.parametrize("mode", [None, *MODES])
def test_native_vector_env_accepts_render_mode(mode):
    envs = gym.make_vec(
        "CartRecovery-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        render_mode=mode,
        **SMALL,
    )
    assert envs.render_mode == mode
    envs.reset(seed=0)
    frames = envs.render()
    if mode is None:
        assert frames is None
    else:
        assert len(frames) == 3
        for frame in frames:
            _check_frame(mode, frame)
