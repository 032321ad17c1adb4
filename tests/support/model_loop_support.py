"""Simulated checkout traffic in a shared store, and the simulator's truth of a model's value.

:func:`fill_store` runs an engine on simulated carts against a store (each decision gets the
simulator's realised profit as its outcome); :func:`true_value` is the expected profit per cart of
a model's (exploring) policy on held-out carts, from the simulator's expected rewards.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import simulator  # noqa: F401  (registers CartRecovery-v0)
from engine import DecisionEngine
from engine.guardrails import GuardrailConfig

T0 = 1_767_225_600.0  # 2026-01-01 UTC


def fill_store(
    url: str,
    n_carts: int,
    *,
    seed: int = 3,
    learner: str = "vw",
    floor: float = 0.5,
    batch: int = 250,
    salt: str = "model-loop",
) -> int:
    """Decide ``n_carts`` simulated carts into ``url`` with a fresh, non-learning engine that
    explores (``floor``), report every outcome; return the number of decisions.
    """
    env = gym.make_vec(
        "CartRecovery-v0", num_envs=batch, vectorization_mode="vector_entry_point", n_shoppers=3_000
    )
    _, info = env.reset(seed=seed)
    eng = DecisionEngine(
        store=url,
        seed=seed,
        learner=learner,
        salt=salt,
        online_learning=False,
        guardrails=GuardrailConfig(exploration_floor=floor, max_contacts=None),
    )
    k = 0
    try:
        while k < n_carts:
            contexts = [dict(c) for c in info["context"][: n_carts - k]]
            for c in contexts:
                c["timestamp"] = T0 + k * 5.0
                k += 1
            decisions = [eng.decide(c) for c in contexts]
            actions = np.zeros(batch, dtype=np.int64)  # carts past n_carts: not decided
            actions[: len(decisions)] = [eng.action_names.index(d.action) for d in decisions]
            _, profit, _, _, info = env.step(actions)
            for c, d, r in zip(contexts, decisions, profit.tolist(), strict=False):
                eng.reward(d.decision_id, float(r), timestamp=c["timestamp"] + 600.0)
        eng.flush()
    finally:
        eng.close()
        env.close()
    return k


def holdout(n: int = 2000, seed: int = 99) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """``n`` held-out carts: contexts, expected rewards (n, 7) and action masks (n, 7)."""
    env = gym.make_vec(
        "CartRecovery-v0", num_envs=n, vectorization_mode="vector_entry_point", n_shoppers=3_000
    )
    _, info = env.reset(seed=seed)
    contexts = [dict(c) for c in info["context"][:]]
    out = contexts, info["expected_reward"].copy(), info["action_mask"].copy() > 0
    env.close()
    return out


def true_value(eng: DecisionEngine, carts: tuple[list[dict], np.ndarray, np.ndarray]) -> float:
    """Expected profit per cart of ``eng``'s policy (its full action distribution) on ``carts``."""
    contexts, expected, _ = carts
    names = eng.action_names
    total = 0.0
    for i, c in enumerate(contexts):
        probs = eng.decide(dict(c, user_id=f"h{i}")).probabilities
        total += sum(p * expected[i, names.index(a)] for a, p in probs.items())
    return total / len(contexts)
