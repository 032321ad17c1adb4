"""A decision log made by the engine on the simulator, for the data-lake tests and benchmarks.

A LinUCB :class:`~engine.DecisionEngine` decides simulated carts in batches; the model is saved
(a new ``model_version``) every ``batches_per_version`` batches, and the carts' timestamps span
several days, so ``by=("model_version", "day")`` has several strata. Most decisions get the
simulator's profit as reward; a share stays pending and one fallback decision is logged.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

import simulator  # noqa: F401  (registers CartRecovery-v0)
from engine import DecisionEngine
from engine.guardrails import GuardrailConfig

DAY = 86_400.0


def make_engine_log(
    root: Path,
    n_batches: int = 8,
    batch: int = 500,
    *,
    seed: int = 5,
    batches_per_version: int = 3,
    learner: str = "linucb",
    days: float = 3.0,
) -> tuple[Path, Path]:
    """Write ``root/decisions.sqlite`` and ``root/model.npz`` (the final model); return both."""
    log_path, model_path = root / "decisions.sqlite", root / "model.npz"
    env = gym.make_vec(
        "CartRecovery-v0", num_envs=batch, vectorization_mode="vector_entry_point", n_shoppers=2_000
    )
    _, info = env.reset(seed=seed)
    engine = DecisionEngine(
        log_path,
        seed=seed,
        learner=learner,
        salt="lake",
        guardrails=GuardrailConfig(exploration_floor=0.3),
    )
    spread = days * DAY / (n_batches * batch)
    k = 0
    for step in range(n_batches):
        contexts = [dict(c) for c in info["context"][:]]
        for c in contexts:  # spread the carts over `days` days, in order
            c["timestamp"] = 1_767_225_600.0 + k * spread
            k += 1
        decisions = [engine.decide(c) for c in contexts]
        actions = np.array([engine.action_names.index(d.action) for d in decisions])
        _, profit, _, _, info = env.step(actions)
        for i, (c, d) in enumerate(zip(contexts, decisions, strict=True)):
            if step < n_batches - 1 or i % 4:
                engine.reward(d.decision_id, float(profit[i]), timestamp=c["timestamp"] + 600.0)
        if (step + 1) % batches_per_version == 0:
            engine.save(model_path)
    engine.decide({"user_id": "u-bad", "timestamp": 1_767_225_600.0})  # a fallback decision
    engine.save(model_path)
    engine.close()
    env.close()
    return log_path, model_path
