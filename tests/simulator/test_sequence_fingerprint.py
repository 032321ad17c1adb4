"""A fingerprint of ``CartRecoverySequence-v0``'s vector and single envs, pinned.

Speed work on the sequence envs must keep their numbers: the same shop, carts, uniforms and
writes give the same observations, rewards, truths, outcomes and contexts. The fingerprint
hashes them, floats rounded to float32 so that a last-bit difference of a libm function on
another CPU is unlikely to trip it; ``exact=True`` hashes the float64 bits (compared before and
after each change on the development machine).
"""

import hashlib
import json

import gymnasium as gym
import numpy as np

import simulator  # noqa: F401  (registers the envs)

SHOP = {"n_shoppers": 2000, "n_items": 150}


class _Hash:
    """sha256 of values: floats as float32 (``exact``: float64), the rest as their bytes/JSON."""

    def __init__(self, exact=False):
        self.h = hashlib.sha256()
        self.float = np.float64 if exact else np.float32

    def add(self, *values):
        for value in values:
            if isinstance(value, dict):
                for key in sorted(value):
                    self.h.update(key.encode())
                    self.add(value[key])
            elif isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
                kind = self.float if value.dtype.kind == "f" else np.int64
                self.h.update(np.ascontiguousarray(value, dtype=kind).tobytes())
            elif isinstance(value, np.ndarray):
                self.add(value.tolist())
            elif isinstance(value, float | np.floating):
                self.add(np.array([value]))
            else:
                self.h.update(json.dumps(value, sort_keys=True, default=repr).encode())

    def hexdigest(self):
        return self.h.hexdigest()


def vector_fingerprint(num_envs=700, steps=40, seed=4, exact=False):
    envs = gym.make_vec(
        "CartRecoverySequence-v0",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        **SHOP,
    )
    rng = np.random.default_rng(seed)
    h = _Hash(exact)
    obs, info = envs.reset(seed=seed)
    for step in range(steps):
        keys = ("q_optimal", "optimal_value", "expected_reward", "action_mask", "touch")
        h.add(obs, *(info[key] for key in keys), info["shopper_type"].tolist())
        if step % 8 == 0:
            h.add(info["context"][step % num_envs])
        obs, reward, term, trunc, info = envs.step(rng.integers(0, 7, num_envs))
        h.add(reward, term, trunc, info["final_info"], info["final_obs"])
    return h.hexdigest()


def single_fingerprint(touches=1500, seed=8, exact=False):
    env = gym.make("CartRecoverySequence-v0", **SHOP)
    rng = np.random.default_rng(seed)
    h = _Hash(exact)
    obs, info = env.reset(seed=seed)
    for t in range(touches):
        h.add(obs, info["q_optimal"], info["expected_reward"])
        if t % 50 == 0:
            h.add(info["context"])
        obs, reward, term, trunc, info = env.step(int(rng.integers(7)))
        h.add(reward, term, trunc)
        if term:
            obs, info = env.reset()
    return h.hexdigest()


VECTOR = "10f3b49876c93223b12675d6e1cce32b0f9fd67f79f7ff985bb07bbe76c83803"
SINGLE = "dab94076923c1cb212385df87c4a0a181d499a798742c2912dd29f3bfd1bb246"


def test_vector_env_fingerprint_is_pinned():
    assert vector_fingerprint() == VECTOR


def test_single_env_fingerprint_is_pinned():
    assert single_fingerprint() == SINGLE
