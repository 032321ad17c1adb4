"""Train and score one policy online on the native vector env, against truth-based baselines.

The loop (``batch`` carts per step):

1. the policy gives probabilities for the batch's contexts (one shared model for the whole batch),
2. one action per cart is sampled from them with a generator derived from ``seed``,
3. the env resolves the carts, and the policy learns from the realised profits.

Decisions inside a batch do not see each other's outcomes: this is *delayed feedback* of up to
``batch`` carts, as in production where rewards arrive hours later. ``batch=1`` is fully online.

Values come from the simulator's truth: the value of a cart is the expected profit
(``info["expected_reward"]``) of the action taken, so the scores carry no outcome noise. Over the
*same* carts the loop also scores, counterfactually (one step, the shop state being the one the
policy created): ``none``, every static action (ineligible -> ``none``; ``best_static`` is the
best of them over the scored carts), the ``rule`` policy, the ``oracle`` (best eligible action)
and ``full_information``: a shadow :class:`~policies.FullInformationPolicy` on the same features,
trained on the truth of every action of every cart with the same delay, acting greedily; it never
drives the env. Headline metrics use the last 20% of carts; the learning curve covers them all.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from engine.sampling import sample_actions
from engine.validation import check_integer, check_probability_matrix
from policies import FullInformationPolicy, Policy, RulePolicy
from policies.batch_features import BatchFeatures
from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_NAMES
from simulator.shop.vector_env import CartRecoveryVectorEnv

logger = logging.getLogger(__name__)

LAST_SHARE = 0.2
#: Baselines scored on the same carts, in table order.
BASELINES = ("none", "best_static", "rule", "full_information", "oracle")


@dataclass
class TrainingResult:
    """What :func:`run_policy` measured. Values are expected profit per cart (USD, truth).

    ``curve`` has one entry per window: ``carts`` (end of the window), and the mean ``value`` of
    the policy, ``none``, ``rule``, ``full_information`` and ``oracle`` over the window's carts.
    ``trace`` keeps per-cart arrays (``value``, ``none``, ``rule``, ``oracle``,
    ``full_information``, ``converted``, ``coupon_cost``, ``truth``, ``mask``, ``action``,
    ``rule_action``, ``p_return``: the cart's true unprompted-return probability) for further
    analysis.
    """

    policy: str
    carts: int
    seed: int
    batch: int
    value_last: float
    none: float
    best_static: float
    best_static_action: str
    rule: float
    full_information: float
    oracle: float
    conversion_last: float
    coupon_cost_last: float
    profit_last: float
    static: dict[str, float]
    curve: list[dict[str, float]]
    seconds: float
    shift_at: int | None = None
    trace: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def gain_share(self) -> float:
        """``(value - none) / (full_information - none)`` on the last 20% (nan if no gain)."""
        ceiling = self.full_information - self.none
        return (self.value_last - self.none) / ceiling if ceiling > 0 else float("nan")

    @property
    def carts_per_second(self) -> float:
        """Throughput of the run (inf when it took no measurable time)."""
        return self.carts / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: the ``--json`` line of ``cartwise train``.

        An undefined gain share is None.
        """
        return {
            "policy": self.policy,
            "carts": self.carts,
            "seed": self.seed,
            "batch": self.batch,
            "value_last": self.value_last,
            "none": self.none,
            "best_static": self.best_static,
            "best_static_action": self.best_static_action,
            "rule": self.rule,
            "full_information": self.full_information,
            "oracle": self.oracle,
            "gain_share": None if np.isnan(self.gain_share) else self.gain_share,
            "conversion_last": self.conversion_last,
            "coupon_cost_last": self.coupon_cost_last,
            "profit_last": self.profit_last,
            "static": dict(self.static),
            "seconds": self.seconds,
            "carts_per_second": self.carts_per_second,
            "shift_at": self.shift_at,
            "curve": list(self.curve),
        }


def run_policy(
    policy: Policy,
    carts: int,
    seed: int,
    config: SimConfig | Mapping[str, Any] | None = None,
    batch: int = 256,
    progress: bool = True,
    curve_points: int = 50,
) -> TrainingResult:
    """Run ``policy`` online over ``carts`` abandoned carts of a shop built from ``seed``.

    Args:
        policy: any :class:`~policies.Policy` (learners learn as they go; truth is passed to
            policies with ``needs_truth``).
        carts: number of carts to decide.
        seed: builds the shop (``env.reset(seed=seed)``, so the same shop as other tools with
            that seed) and, through an independent child stream, the action sampling.
        config: :class:`~simulator.SimConfig` or a mapping of its fields.
        batch: carts decided per model snapshot (delayed feedback; 1 = fully online).
        progress: show a tqdm progress bar (stderr).
        curve_points: windows of the learning curve.

    >>> from policies import make_policy
    >>> r = run_policy(make_policy("none"), 600, seed=0, config={"n_shoppers": 300}, progress=False)
    >>> r.value_last == r.none and r.oracle >= r.best_static
    True
    >>> r.oracle >= r.full_information - 1e-9
    True
    """
    carts = check_integer(carts, "carts", low=1)
    batch = check_integer(batch, "batch", low=1)
    curve_points = check_integer(curve_points, "curve_points", low=1)
    seed = check_integer(seed, "seed", low=0)
    if not isinstance(policy, Policy):
        raise ValueError(f"policy == {policy!r}, must be a policies.Policy")
    batch = int(min(batch, carts))
    env = CartRecoveryVectorEnv(num_envs=batch, config=config)
    _, info = env.reset(seed=int(seed))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(1)[0])
    if isinstance(getattr(policy, "features", None), BatchFeatures):
        # the policy's own builder (it may hold a CF or risk model), one transform per batch
        shadow = FullInformationPolicy(features=policy.features.builder)
        shadow.features = policy.features
    else:
        shadow = FullInformationPolicy()
    rule = RulePolicy()
    n_actions = len(ACTION_NAMES)
    truth_all = np.empty((carts, n_actions))
    mask_all = np.empty((carts, n_actions), dtype=bool)
    chosen = np.empty(carts, dtype=np.int64)
    shadow_chosen = np.empty(carts, dtype=np.int64)
    rule_chosen = np.empty(carts, dtype=np.int64)
    converted = np.empty(carts, dtype=bool)
    coupon_cost = np.empty(carts)
    profit = np.empty(carts)
    p_return = np.empty(carts)
    padded = np.zeros(batch, dtype=np.int64)
    start = time.perf_counter()
    done = 0
    with tqdm(
        total=carts,
        desc=policy.name,
        unit="cart",
        disable=not progress,
        leave=False,
        mininterval=0.5,
    ) as bar:
        while done < carts:
            n = min(batch, carts - done)
            rows = slice(done, done + n)
            truth = info["expected_reward"][:n]
            mask = info["action_mask"][:n].astype(bool)
            contexts = info["context"][:n]  # a list: identical object for decide and update
            p = policy.probabilities_batch(contexts, mask, truth if policy.needs_truth else None)
            p = check_probability_matrix(
                p,
                f"policy {policy.name!r} probabilities",
                n_rows=n,
                n_cols=mask.shape[1],
                eligible=mask,
            )
            actions = sample_actions(p, rng)
            shadow_chosen[rows] = shadow.probabilities_batch(contexts, mask).argmax(axis=1)
            rule_chosen[rows] = rule.probabilities_batch(contexts, mask).argmax(axis=1)
            padded[:n] = actions
            padded[n:] = 0
            _, reward, _, _, info_next = env.step(padded)
            final = info_next["final_info"]
            if policy.learns:
                policy.update_batch(
                    contexts,
                    actions,
                    p[np.arange(n), actions],
                    reward[:n],
                    truth if policy.needs_truth else None,
                )
            shadow.update_batch(contexts, actions, np.ones(n), reward[:n], truth)
            truth_all[rows], mask_all[rows], chosen[rows] = truth, mask, actions
            p_return[rows] = info["p_return"][:n]
            converted[rows] = final["converted"][:n]
            coupon_cost[rows] = final["coupon_cost"][:n]
            profit[rows] = final["profit"][:n]
            info = info_next
            done += n
            bar.update(n)
    seconds = time.perf_counter() - start
    logger.debug("%s: %d carts in %.2f s (batch %d)", policy.name, carts, seconds, batch)
    return _score(
        policy.name,
        carts,
        int(seed),
        batch,
        truth_all,
        mask_all,
        chosen,
        shadow_chosen,
        rule_chosen,
        converted,
        coupon_cost,
        profit,
        curve_points,
        seconds,
        env.config,
        p_return,
    )


def _score(
    name: str,
    carts: int,
    seed: int,
    batch: int,
    truth: np.ndarray,
    mask: np.ndarray,
    chosen: np.ndarray,
    shadow_chosen: np.ndarray,
    rule_chosen: np.ndarray,
    converted: np.ndarray,
    coupon_cost: np.ndarray,
    profit: np.ndarray,
    curve_points: int,
    seconds: float,
    config: SimConfig,
    p_return: np.ndarray,
) -> TrainingResult:
    rows = np.arange(carts)
    per_cart = {
        "value": truth[rows, chosen],
        "none": truth[:, 0],
        "rule": truth[rows, rule_chosen],
        "full_information": truth[rows, shadow_chosen],
        "oracle": np.where(mask, truth, -np.inf).max(axis=1),
    }
    static_cols = np.where(mask, truth, truth[:, :1])  # ineligible -> none's value
    last = slice(int(np.floor(carts * (1.0 - LAST_SHARE))), carts)
    static = {a: float(static_cols[last, j].mean()) for j, a in enumerate(ACTION_NAMES)}
    best_action = max(static, key=static.get)
    edges = np.unique(np.linspace(0, carts, min(curve_points, carts) + 1).round().astype(np.int64))
    curve = []
    for lo, hi in itertools.pairwise(edges):
        point = {"carts": int(hi)}
        point.update({k: float(v[lo:hi].mean()) for k, v in per_cart.items()})
        point["best_static"] = float(static_cols[lo:hi, ACTION_NAMES.index(best_action)].mean())
        curve.append(point)
    shift = config.mixture_shift
    return TrainingResult(
        policy=name,
        carts=carts,
        seed=seed,
        batch=batch,
        value_last=float(per_cart["value"][last].mean()),
        none=float(per_cart["none"][last].mean()),
        best_static=static[best_action],
        best_static_action=best_action,
        rule=float(per_cart["rule"][last].mean()),
        full_information=float(per_cart["full_information"][last].mean()),
        oracle=float(per_cart["oracle"][last].mean()),
        conversion_last=float(converted[last].mean()),
        coupon_cost_last=float(coupon_cost[last].mean()),
        profit_last=float(profit[last].mean()),
        static=static,
        curve=curve,
        seconds=seconds,
        shift_at=None if shift is None else int(shift["at_episode"]),
        trace={
            **per_cart,
            "converted": converted,
            "coupon_cost": coupon_cost,
            "truth": truth,
            "mask": mask,
            "action": chosen,
            "rule_action": rule_chosen,
            "p_return": p_return,
        },
    )
