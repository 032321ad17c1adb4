"""Logged flows for off-policy evaluation of sequence policies, with the exact truth beside them.

:func:`log_flows` runs a logging policy (a mixture of a fixed flow and uniform exploration over
eligible actions) on ``CartRecoverySequence-v0`` and returns the trajectories as the arrays
:func:`engine.ope.sequence.evaluate_sequences` takes, plus the exact value of a target fixed flow
on the very carts logged (from the DP tables), so estimators can be checked against the truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES
from engine.sampling import sample_actions
from policies.sequence import FlowPolicy
from simulator.shop.sequence_vector_env import CartRecoverySequenceVectorEnv


def log_flows(
    carts: int,
    seed: int,
    target: Sequence[str],
    logging_flow: Sequence[str],
    explore: float = 0.5,
    config: Mapping[str, Any] | None = None,
    num_envs: int = 256,
) -> dict[str, Any]:
    """``carts`` logged flows of the logging policy, with the target's exact value.

    Returns ``rewards``, ``valid``, ``actions``, ``logging`` (n, K), ``target`` (n, K, A)
    probabilities of the target flow, ``true_value`` (the target's exact mean value on
    these carts) and ``logging_value`` (mean realised return of the logging policy).
    """
    env = CartRecoverySequenceVectorEnv(num_envs, config=config)
    _, info = env.reset(seed=seed)
    sim, K, A = env.sim, env.sim.K, len(ACTION_NAMES)
    index = {a: i for i, a in enumerate(ACTION_NAMES)}
    target_flow = FlowPolicy(target)
    logging_policy = FlowPolicy(logging_flow)
    target_actions = np.array([[index[target[k]] if k < len(target) else 0 for k in range(K)]])
    rng = np.random.default_rng([seed, 11])
    slots = np.arange(num_envs)
    truth = sim.flow_value(slots, np.repeat(target_actions, num_envs, axis=0))
    buf = {name: np.zeros((num_envs, K)) for name in ("rewards", "logging")}
    acts = np.zeros((num_envs, K), dtype=np.int64)
    valid = np.zeros((num_envs, K), dtype=bool)
    tgt = np.zeros((num_envs, K, A))
    out: dict[str, list] = {
        "rewards": [],
        "logging": [],
        "actions": [],
        "valid": [],
        "target": [],
        "truth": [],
    }
    while len(out["truth"]) < carts:
        mask = info["action_mask"].astype(bool)
        touch = info["touch"] - 1
        values = sim.slot["value"]
        mu = (1 - explore) * logging_policy.decide_touches(
            touch, values, mask
        ) + explore * mask / mask.sum(1, keepdims=True)
        pi = target_flow.decide_touches(touch, values, mask)
        a = sample_actions(mu, rng)
        _, reward, term, _, info = env.step(a)
        buf["rewards"][slots, touch] = reward
        buf["logging"][slots, touch] = mu[slots, a]
        acts[slots, touch] = a
        valid[slots, touch] = True
        tgt[slots, touch] = pi
        ended = np.flatnonzero(term)
        for name, arr in (
            ("rewards", buf["rewards"]),
            ("logging", buf["logging"]),
            ("actions", acts),
            ("valid", valid),
            ("target", tgt),
            ("truth", truth),
        ):
            out[name].extend(arr[ended].copy())
        if len(ended):
            buf["rewards"][ended] = 0.0
            buf["logging"][ended] = 1.0
            acts[ended] = 0
            valid[ended] = False
            tgt[ended] = 0.0
            truth[ended] = sim.flow_value(ended, np.repeat(target_actions, len(ended), axis=0))
    res = {name: np.array(v[:carts]) for name, v in out.items()}
    res["true_value"] = float(res.pop("truth").mean())
    res["logging_value"] = float(res["rewards"].sum(axis=1).mean())
    return res
