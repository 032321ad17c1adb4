"""Train and score one policy on ``CartRecoverySequence-v0`` (native vector env), and compare many.

At every step each slot's policy decision is sampled from the policy's probabilities for the
slot's current touch (a policy that ``needs_truth``, the myopic oracle, is given the touch's
expected rewards). Learning: bandits (``kind == "bandit"``) learn each touch's reward; the
sequence learner (``kind == "sequence"``) observes each transition and refits every
``fit_every`` flows. Values come from the truth: the value of a flow is the sum over its
touches of the expected reward of the action taken (``info["expected_reward"]``), which is
unbiased for the policy's expected return and free of purchase noise; beside it, each flow's
exact optimum (``optimal_value`` at its first touch) and the exact value of sending nothing.
Headline figures are over the last 20% of flows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.sampling import sample_actions
from policies import Policy, make_policy
from policies.sequence import FlowPolicy
from simulator.shop.config import SimConfig
from simulator.shop.sequence_model import SequenceConfig
from simulator.shop.sequence_vector_env import CartRecoverySequenceVectorEnv

logger = logging.getLogger(__name__)

LAST_SHARE = 0.2
#: The sequence scoreboard's default policies.
DEFAULT_SEQUENCE_POLICIES = (
    "seq:reminder",
    "seq:3-reminders",
    "seq:reminders-coupon",
    "seq:rule",
    "seq:linucb",
    "seq:fqi",
    "seq:myopic-oracle",
)


@dataclass
class SequenceResult:
    """What :func:`run_sequence_policy` measured, per flow (USD, truth) on the last 20% of flows."""

    policy: str
    kind: str
    carts: int
    seed: int
    value: float
    optimal: float
    none: float
    conversion: float
    unsubscribe_rate: float
    coupon_cost: float
    contacts_per_cart: float
    seconds: float

    @property
    def share_of_optimal_gain(self) -> float:
        """``(value - none) / (optimal - none)`` (nan without a gain)."""
        gain = self.optimal - self.none
        return (self.value - self.none) / gain if gain > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields, with the share of the optimal gain."""
        return {**asdict(self), "share_of_optimal_gain": self.share_of_optimal_gain}


def policy_kind(policy: Policy) -> str:
    """``"flow"``, ``"bandit"`` or ``"sequence"``.

    A policy without ``kind`` is a flow: it decides the same at every touch.
    """
    return getattr(policy, "kind", "flow")


def run_sequence_policy(
    policy: Policy,
    carts: int,
    seed: int,
    config: SimConfig | Mapping[str, Any] | None = None,
    sequence: SequenceConfig | Mapping[str, Any] | None = None,
    num_envs: int = 256,
    fit_every: int | None = None,
) -> SequenceResult:
    """Run ``policy`` until ``carts`` flows have ended on the shop built from ``seed``.

    A sequence learner refits every ``fit_every`` flows (default: its own ``fit_every``).
    """
    if carts < 1:
        raise ValueError(f"carts == {carts}, must be >= 1")
    if fit_every is None:
        fit_every = int(getattr(policy, "fit_every", 2_000))
    start = time.perf_counter()
    env = CartRecoverySequenceVectorEnv(num_envs, config=config, sequence=sequence)
    _, info = env.reset(seed=seed)
    sim = env.sim
    rng = np.random.default_rng([seed, 7])
    kind = policy_kind(policy)
    learns_flows = kind == "sequence" and hasattr(policy, "observe")
    n = num_envs
    acc = np.zeros(n)
    optimal = info["optimal_value"].copy()
    none = sim.slot["none_value"].copy()
    contacts = np.zeros(n)
    rows: dict[str, list[float]] = {
        k: []
        for k in (
            "value",
            "optimal",
            "none",
            "converted",
            "unsubscribed",
            "coupon_cost",
            "contacts",
        )
    }
    pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = (
        None  # X, actions, rewards of live slots
    )
    since_fit = 0
    while len(rows["value"]) < carts:
        mask = info["action_mask"].astype(bool)
        X = None
        if isinstance(policy, FlowPolicy):
            probs = policy.decide_touches(info["touch"] - 1, sim.slot["value"], mask)
        elif getattr(policy, "needs_truth", False):  # the myopic oracle
            probs = policy.probabilities_batch([{}] * n, mask, truth=info["expected_reward"])
        else:
            contexts = info["context"].freeze()
            if hasattr(policy, "features"):
                X = policy.features.many(contexts)
            probs = policy.probabilities_batch(contexts, mask)
        if learns_flows and pending is not None:
            px, pa, pr, live = pending
            policy.observe(
                px[live], pa[live], pr[live], np.zeros(live.sum(), dtype=bool), X[live], mask[live]
            )
        actions = sample_actions(probs, rng)
        chosen = probs[np.arange(n), actions]
        _, reward, term, _, new_info = env.step(actions)
        fin = new_info["final_info"]
        acc += fin["expected_reward"]
        contacts += actions != 0
        if kind == "bandit":
            policy.update_batch(contexts, actions, chosen, reward)
        elif learns_flows:
            if term.any():
                dummy = np.zeros((term.sum(), X.shape[1]))
                policy.observe(
                    X[term],
                    actions[term],
                    reward[term],
                    np.ones(term.sum(), dtype=bool),
                    dummy,
                    np.ones((term.sum(), mask.shape[1]), dtype=bool),
                )
            pending = (X, actions, reward, ~term)
        ended = np.flatnonzero(term)
        for key, values in (
            ("value", acc),
            ("optimal", optimal),
            ("none", none),
            ("converted", fin["converted"]),
            ("unsubscribed", fin["unsubscribed"]),
            ("coupon_cost", fin["coupon_cost"]),
            ("contacts", contacts),
        ):
            rows[key].extend(np.asarray(values, dtype=np.float64)[ended].tolist())
        acc[ended] = 0.0
        contacts[ended] = 0.0
        optimal[ended] = new_info["optimal_value"][ended]
        none[ended] = sim.slot["none_value"][ended]
        since_fit += len(ended)
        if learns_flows and since_fit >= fit_every:
            policy.fit()
            since_fit = 0
        info = new_info
    tail = slice(int(carts * (1 - LAST_SHARE)), carts)
    m = {k: float(np.mean(v[tail])) for k, v in rows.items()}
    return SequenceResult(
        policy.name,
        kind,
        carts,
        seed,
        m["value"],
        m["optimal"],
        m["none"],
        m["converted"],
        m["unsubscribed"],
        m["coupon_cost"],
        m["contacts"],
        time.perf_counter() - start,
    )


def compare_sequence_policies(
    names: Sequence[str] = DEFAULT_SEQUENCE_POLICIES,
    carts: int = 60_000,
    seeds: int | Sequence[int] = 2,
    config: SimConfig | Mapping[str, Any] | None = None,
    sequence: SequenceConfig | Mapping[str, Any] | None = None,
    num_envs: int = 256,
) -> dict[str, Any]:
    """Every policy on every seed, and the scoreboard (means over seeds, sample sd beside).

    Returns ``{"optimal", "none", "policies": {name: {"kind", "value", "share_of_optimal_gain",
    "value_sd", "share_sd", ...}}, "runs": [...]}``.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError(f"seeds == {seeds!r}, must be a count >= 1 or a non-empty list")
    for name in names:
        make_policy(name)  # fail fast on a bad name
    runs = []
    for name in names:
        for seed in seed_list:
            kwargs = (
                {"n_touches": SequenceConfig.from_value(sequence).n_touches}
                if name == "seq:fqi"
                else {}
            )
            result = run_sequence_policy(
                make_policy(name, seed=seed, **kwargs), carts, seed, config, sequence, num_envs
            )
            logger.info(
                "%s seed %d: value %.3f, share of the optimal gain %.3f",
                name,
                seed,
                result.value,
                result.share_of_optimal_gain,
            )
            runs.append(result.to_dict())

    def sd(x: list[float]) -> float:
        return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")

    policies = {}
    for name in names:
        mine = [r for r in runs if r["policy"] == name]
        entry = {"kind": mine[0]["kind"]}
        for key in (
            "value",
            "share_of_optimal_gain",
            "unsubscribe_rate",
            "coupon_cost",
            "contacts_per_cart",
            "conversion",
        ):
            entry[key] = float(np.mean([r[key] for r in mine]))
            entry[f"{key}_sd"] = sd([r[key] for r in mine])
        policies[name] = entry
    return {
        "optimal": float(np.mean([r["optimal"] for r in runs])),
        "none": float(np.mean([r["none"] for r in runs])),
        "carts": carts,
        "seeds": seed_list,
        "policies": policies,
        "runs": runs,
    }


def markdown_sequence_table(board: Mapping[str, Any]) -> str:
    """The sequence scoreboard as a markdown table (mean ± sd over seeds)."""
    lines = [
        f"DP optimum {board['optimal']:.3f} USD per cart, none {board['none']:.3f} "
        f"({len(board['seeds'])} seeds, {board['carts']} carts, last 20%)",
        "",
        "| policy | kind | value | share of optimal gain | unsubscribes | coupon cost "
        "| contacts/cart |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]

    for name, p in board["policies"].items():
        lines.append(
            f"| {name} | {p['kind']} | {_cell(p, 'value')} | "
            f"{_cell(p, 'share_of_optimal_gain')} | {_cell(p, 'unsubscribe_rate', 4)} | "
            f"{_cell(p, 'coupon_cost')} | {_cell(p, 'contacts_per_cart', 2)} |"
        )
    return "\n".join(lines)


def _cell(entry: Mapping[str, Any], key: str, digits: int = 3) -> str:
    """``entry[key]`` with its sample sd (``entry[key + "_sd"]``) unless that is nan."""
    sd = entry[f"{key}_sd"]
    return f"{entry[key]:.{digits}f}" + ("" if sd != sd else f" ± {sd:.{digits}f}")
