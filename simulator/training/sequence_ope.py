"""Logged flows for off-policy evaluation of sequence policies, with the exact truth beside them.

:func:`log_flows` runs a logging policy (a mixture of a fixed flow and uniform exploration over
eligible actions) on ``CartRecoverySequence-v0`` and returns the trajectories as the arrays
:func:`engine.ope.sequence.evaluate_sequences` takes, plus the exact value of a target fixed flow
on the very carts logged (from the DP tables), so estimators can be checked against the truth.
:func:`sequence_coverage` counts how often each interval covers that truth over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES
from engine.ope.sequence import BOOTSTRAP_INTERVALS, SEQUENCE_ESTIMATORS, evaluate_sequences
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
    """The first ``carts`` flows started under an exploring logging flow, with the target's truth.

    Returns ``rewards``, ``valid``, ``actions``, ``logging`` (n, K), ``target`` (n, K, A)
    probabilities of the target flow, ``true_value`` (the target's exact mean value on
    these carts) and ``logging_value`` (mean realised return of the logging policy).

    Flows are kept in the order they *start* and logging runs until all of them have ended.
    Keeping the first ``carts`` flows to *end* instead would select on the outcome: of the
    carts started last, only those whose flow ended early (a purchase at an early touch) would
    be kept, which biased both estimators upward (+0.06 USD, 2.3 standard errors over 400
    seeds) while the truth, a property of the cart, stayed unselected.
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
    flow = slots.copy()  # the start order of each slot's flow
    started = num_envs
    rewards, logging = np.zeros((carts, K)), np.ones((carts, K))
    actions, valid = np.zeros((carts, K), dtype=np.int64), np.zeros((carts, K), dtype=bool)
    target_p = np.zeros((carts, K, A))
    truth = np.full(carts, np.nan)
    ended_flows = 0

    def start(where: np.ndarray) -> None:  # the exact value of the target on new flows
        kept = flow[where] < carts
        truth[flow[where][kept]] = sim.flow_value(
            where[kept], np.repeat(target_actions, int(kept.sum()), axis=0)
        )

    start(slots)
    while ended_flows < carts:
        mask = info["action_mask"].astype(bool)
        touch = info["touch"] - 1
        values = sim.slot["value"]
        mu = (1 - explore) * logging_policy.decide_touches(
            touch, values, mask
        ) + explore * mask / mask.sum(1, keepdims=True)
        pi = target_flow.decide_touches(touch, values, mask)
        a = sample_actions(mu, rng)
        _, reward, term, _, info = env.step(a)
        keep = flow < carts
        rows, ks = flow[keep], touch[keep]
        rewards[rows, ks] = reward[keep]
        logging[rows, ks] = mu[slots, a][keep]
        actions[rows, ks] = a[keep]
        valid[rows, ks] = True
        target_p[rows, ks] = pi[keep]
        ended = np.flatnonzero(term)
        ended_flows += int((flow[ended] < carts).sum())
        flow[ended] = started + np.arange(len(ended))  # the env restarts them in slot order
        started += len(ended)
        start(ended)
    return {
        "rewards": rewards,
        "valid": valid,
        "actions": actions,
        "logging": logging,
        "target": target_p,
        "true_value": float(truth.mean()),
        "logging_value": float(rewards.sum(axis=1).mean()),
    }


COVERAGE_TARGET = ("recall_message", "recall_message", "coupon_10")
"""The target flow of the coverage measurement: reminder, reminder, coupon_10 last."""


def sequence_coverage(
    seeds: Sequence[int],
    carts: int,
    logging_flow: Sequence[str],
    cis: Sequence[str] = ("floor", "skew-t", "hall", "normal"),
    target: Sequence[str] = COVERAGE_TARGET,
    explore: float = 0.5,
    config: Mapping[str, Any] | None = None,
    n_boot: int = 1000,
) -> dict[str, dict[str, Any]]:
    """Coverage of the exact truth by each interval of :func:`evaluate_sequences`, over seeds.

    Per seed, :func:`log_flows` logs ``carts`` flows; returns ``{"<estimator>/<ci>": {"covered",
    "below", "above", "seeds"}}``: the counts of 95% intervals holding the truth, lying wholly
    below it and wholly above it. Bootstrap intervals draw ``n_boot`` resamples from the seed.
    """
    out = {
        f"{name}/{ci}": {"covered": 0, "below": 0, "above": 0, "seeds": 0}
        for name in SEQUENCE_ESTIMATORS
        for ci in cis
    }
    for seed in seeds:
        logs = log_flows(carts, seed, target, logging_flow, explore=explore, config=config)
        args = (logs["rewards"], logs["valid"], logs["actions"], logs["logging"], logs["target"])
        truth = logs["true_value"]
        for ci in cis:
            boot = {"n_boot": n_boot, "seed": seed} if ci in BOOTSTRAP_INTERVALS else {}
            res = evaluate_sequences(*args, ci=ci, **boot)
            for name in SEQUENCE_ESTIMATORS:
                row = out[f"{name}/{ci}"]
                low, high = res[name]["ci_low"], res[name]["ci_high"]
                row["seeds"] += 1
                row["below"] += high < truth
                row["above"] += low > truth
                row["covered"] += low <= truth <= high
    return out
