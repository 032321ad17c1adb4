"""A simulated A/B test in one shop: a logged pre-period, then arms side by side for some days.

``run_experiment`` drives the native vector env (:class:`simulator.CartRecoveryVectorEnv`): carts
arrive in time order at ``SimConfig.carts_per_day``; each step brings ``batch`` carts. During the
pre-period every cart is decided by the current policy (``rule``) mixed with a little uniform
exploration, and logged with its propensity. Then each cart's shopper is assigned to an arm by a
salted hash of the user id (:func:`simulator.experiments.assignment.assign`), and that arm's
policy decides, the decisions of one arm within a step being batched. Learning arms learn during
the test from the realised profit of their own carts, a step after deciding (feedback is delayed
by one batch, a few hours of carts, as purchases arrive later in a live shop). All arms share the
shop: a shopper's history carries the effects of what any arm did to them before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from engine.actions import DAY
from engine.sampling import sample_actions
from engine.validation import (
    check_confidence,
    check_integer,
    check_probability,
    check_probability_matrix,
)
from policies.base import Policy
from simulator.experiments.arms import ArmSpec, ExploringPolicy, RowView, build_policy, resolve_arms
from simulator.experiments.assignment import assign, check_salt, normalise_weights
from simulator.experiments.prescreen import PreScreen
from simulator.shop.config import SimConfig
from simulator.shop.vector_env import CartRecoveryVectorEnv

if TYPE_CHECKING:
    from simulator.experiments.analysis import Analysis

__all__ = ["ExperimentResult", "run_experiment"]

logger = logging.getLogger(__name__)

_OUTCOMES = ("profit", "converted", "revenue", "coupon_cost")


@dataclass(frozen=True)
class ExperimentResult:
    """What a simulated experiment produced.

    - ``carts``: one row per test cart: ``user_id, arm, day`` (1..days), ``timestamp, action,
      propensity, profit, converted, revenue, coupon_cost`` (realised), ``true_profit`` (the
      simulator's expected profit of the chosen action for this cart, i.e. without the purchase
      noise), ``shopper_type`` (hidden truth), and the user's pre-period ``pre_profit`` (sum of
      realised profit, 0 without pre-period carts) and ``pre_carts``.
    - ``pre_log``: one row per pre-period cart, same columns without ``arm`` and covariates;
      ``day`` runs from ``-pre_days`` to -1.
    - ``prescreen``: the OPE pre-screen table (:class:`simulator.experiments.prescreen.PreScreen`)
      or ``None``.
    """

    carts: pd.DataFrame
    pre_log: pd.DataFrame
    arms: tuple[str, ...]
    control: str
    weights: dict[str, float]
    salt: str
    prescreen: pd.DataFrame | None
    settings: dict[str, Any] = field(default_factory=dict)

    def analyse(self, **kwargs: Any) -> Analysis:
        """:func:`simulator.experiments.analysis.analyse` of this result."""
        from simulator.experiments.analysis import analyse

        return analyse(self, **kwargs)


def _decide(
    policy: Policy,
    who: str,
    records: Sequence[Mapping[str, Any]],
    rows: np.ndarray,
    mask: np.ndarray,
    truth: np.ndarray,
    rng: np.random.Generator,
    actions: np.ndarray,
    probs: np.ndarray,
) -> RowView:
    """Sample ``policy``'s actions for ``rows`` into ``actions``/``probs``; return the contexts."""
    view = RowView(records, rows)
    eligible = mask[rows]
    p = check_probability_matrix(
        policy.probabilities_batch(view, eligible, truth[rows] if policy.needs_truth else None),
        f"{who} probabilities",
        n_rows=eligible.shape[0],
        n_cols=eligible.shape[1],
        eligible=eligible,
    )
    actions[rows] = sample_actions(p, rng)
    probs[rows] = p[np.arange(rows.size), actions[rows]]
    return view


class _Assigner:
    """Arm index of each user id, hashed once per user (see :func:`assign`)."""

    def __init__(self, names: Sequence[str], salt: str, shares: Mapping[str, float]) -> None:
        self._names, self._salt, self._shares = list(names), salt, shares
        self._index = {name: k for k, name in enumerate(names)}
        self._arm_of: dict[str, int] = {}

    def __call__(self, user_ids: np.ndarray) -> np.ndarray:
        new = list(dict.fromkeys(u for u in user_ids if u not in self._arm_of))
        if new:
            arms = assign(new, self._names, self._salt, self._shares)
            self._arm_of.update(zip(new, (self._index[a] for a in arms), strict=True))
        return np.fromiter((self._arm_of[u] for u in user_ids), dtype=np.int64, count=len(user_ids))


class _Log:
    """Column chunks of the carts of one period, concatenated at the end."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []

    def add(
        self,
        rows: np.ndarray,
        users: np.ndarray,
        times: np.ndarray,
        day: np.ndarray,
        actions: np.ndarray,
        probs: np.ndarray,
        outcome: Mapping[str, np.ndarray],
        truth: np.ndarray,
        **extra: Any,
    ) -> None:
        if rows.size == 0:
            return
        chosen = actions[rows]
        part = {
            "user_id": users[rows],
            **{k: np.asarray(v)[rows] for k, v in extra.items()},
            "day": day[rows],
            "timestamp": times[rows],
            "action": chosen,
            "propensity": probs[rows],
        }
        part.update({key: np.asarray(outcome[key])[rows] for key in _OUTCOMES})
        part["true_profit"] = truth[rows, chosen]
        part["shopper_type"] = np.asarray(outcome["shopper_type"])[rows]
        self.parts.append(part)

    def frame(self, action_names: Sequence[str], with_arm: bool) -> pd.DataFrame:
        keys = [
            "user_id",
            *(["arm"] if with_arm else []),
            "day",
            "timestamp",
            "action",
            "propensity",
            *_OUTCOMES,
            "true_profit",
            "shopper_type",
        ]
        if not self.parts:
            return pd.DataFrame({key: [] for key in keys})
        data = {key: np.concatenate([part[key] for part in self.parts]) for key in keys}
        data["action"] = np.asarray(action_names, dtype=object)[data["action"]]
        data["converted"] = data["converted"].astype(bool)
        data["day"] = data["day"].astype(np.int64)
        return pd.DataFrame(data)


def run_experiment(
    arms: Mapping[str, ArmSpec] | Sequence[str],
    users: int,
    days: int,
    seed: int,
    config: SimConfig | Mapping[str, Any] | None = None,
    pre_days: int = 7,
    progress: bool = True,
    *,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    salt: str | None = None,
    logging_policy: ArmSpec = "rule",
    exploration: float = 0.1,
    batch: int = 64,
    prescreen: bool = True,
    confidence: float = 0.95,
) -> ExperimentResult:
    """Simulate a pre-period and an A/B test of ``arms`` in one shop of ``users`` shoppers.

    Args:
        arms: policy names (``["none", "rule", "vw"]``) or ``{arm name: policy, name or
            factory}``; the first arm is the control.
        users: shoppers in the shop (``SimConfig.n_shoppers``; overrides ``config``).
        days: length of the test, in days.
        seed: one seed for the shop, the action sampling, the policies and the OPE folds.
        config: other :class:`SimConfig` fields (e.g. ``carts_per_day``).
        pre_days: length of the logged pre-period, in days.
        progress: show a progress bar.
        weights: traffic shares per arm (equal by default).
        salt: assignment salt (default ``f"cartwise-ab-{seed}"``).
        logging_policy: the pre-period policy.
        exploration: share of uniform random actions mixed into the logging policy.
        batch: carts per vector-env step.
        prescreen: run the OPE pre-screen (needs ``pre_days``).
        confidence: confidence level of the pre-screen's intervals.

    >>> result = run_experiment(["none", "rule"], users=300, days=2, seed=1, pre_days=1,
    ...                         progress=False)
    >>> sorted(result.carts["arm"].unique()), int(result.carts["day"].max())
    (['none', 'rule'], 2)
    """
    users = check_integer(users, "users", low=2)
    days = check_integer(days, "days", low=1)
    pre_days = check_integer(pre_days, "pre_days", low=0)
    seed = check_integer(seed, "seed", low=0)
    batch = check_integer(batch, "batch", low=1)
    check_probability(exploration, "exploration", positive=True)
    check_confidence(confidence)
    children = np.random.SeedSequence(seed).spawn(4)
    env_seed = int(children[0].generate_state(1)[0])
    rng = np.random.default_rng(children[1])
    if not isinstance(arms, (Mapping, str)):
        arms = list(arms)
    policy_seeds = [int(s) for s in children[2].generate_state(len(arms) + 1)]
    policies = resolve_arms(arms, policy_seeds[:-1])
    names = list(policies)
    control = names[0]
    shares = normalise_weights(names, weights)
    salt = f"cartwise-ab-{seed}" if salt is None else salt
    check_salt(salt)
    logger_policy = ExploringPolicy(
        build_policy(logging_policy, policy_seeds[-1], "logging_policy"), float(exploration)
    )

    env = CartRecoveryVectorEnv(num_envs=batch, config=config, n_shoppers=users)
    action_names = env.action_names
    for who, policy in [*policies.items(), ("logging_policy", logger_policy)]:
        if tuple(policy.action_names) != tuple(action_names):
            raise ValueError(
                f"{who}: action_names == {policy.action_names!r}, must be "
                f"the simulator's {action_names!r}"
            )
    start = env.config.start_time
    test_start = start + pre_days * DAY
    end = test_start + days * DAY
    screen = (
        PreScreen(policies, control, start + pre_days * DAY / 2)
        if prescreen and pre_days > 0
        else None
    )
    assigner = _Assigner(names, salt, shares)
    pre_log, test_log = _Log(), _Log()
    arm_names = np.asarray(names, dtype=object)

    obs, info = env.reset(seed=env_seed)
    with tqdm(
        total=pre_days + days, unit="day", desc="simulating", disable=not progress, leave=False
    ) as bar:
        while True:
            contexts = info["context"]
            n = len(contexts)
            records = [contexts[i] for i in range(n)]
            times = np.fromiter((c["timestamp"] for c in records), dtype=np.float64, count=n)
            if times[0] >= end:
                break
            user_ids = np.asarray([c["user_id"] for c in records], dtype=object)
            mask = info["action_mask"].astype(bool)
            truth = info["expected_reward"]
            offset = np.floor((times - test_start) / DAY).astype(np.int64)
            pre_rows = np.flatnonzero(times < test_start)
            test_rows = np.flatnonzero((times >= test_start) & (times < end))
            actions = np.zeros(n, dtype=np.int64)
            probs = np.ones(n)
            if pre_rows.size:
                _decide(
                    logger_policy,
                    "logging_policy",
                    records,
                    pre_rows,
                    mask,
                    truth,
                    rng,
                    actions,
                    probs,
                )
            arm_index = np.full(n, -1, dtype=np.int64)
            arm_index[test_rows] = assigner(user_ids[test_rows])
            groups = []
            for k, (name, policy) in enumerate(policies.items()):
                rows = np.flatnonzero(arm_index == k)
                if rows.size:
                    view = _decide(
                        policy, f"arm {name!r}", records, rows, mask, truth, rng, actions, probs
                    )
                    groups.append((policy, rows, view))
            step_obs = obs
            obs, _, _, _, info = env.step(actions)
            outcome = info["final_info"]
            profit = np.asarray(outcome["profit"], dtype=np.float64)
            for policy, rows, view in groups:
                if policy.learns:
                    policy.update_batch(
                        view,
                        actions[rows],
                        probs[rows],
                        profit[rows],
                        truth[rows] if policy.needs_truth else None,
                    )
            if screen is not None and pre_rows.size:
                screen.observe(
                    RowView(records, pre_rows),
                    mask[pre_rows],
                    truth[pre_rows],
                    times[pre_rows],
                    step_obs[pre_rows],
                    actions[pre_rows],
                    probs[pre_rows],
                    profit[pre_rows],
                )
            pre_log.add(pre_rows, user_ids, times, offset, actions, probs, outcome, truth)
            test_log.add(
                test_rows,
                user_ids,
                times,
                offset + 1,
                actions,
                probs,
                outcome,
                truth,
                arm=arm_names[np.maximum(arm_index, 0)],
            )
            done = min(int((times[-1] - start) // DAY), pre_days + days)
            bar.update(max(done - bar.n, 0))

    carts = test_log.frame(action_names, with_arm=True)
    pre = pre_log.frame(action_names, with_arm=False)
    totals = pre.groupby("user_id")["profit"].agg(["sum", "size"])
    carts["pre_profit"] = carts["user_id"].map(totals["sum"]).fillna(0.0).astype(np.float64)
    carts["pre_carts"] = carts["user_id"].map(totals["size"]).fillna(0).astype(np.int64)
    ope_table = screen.evaluate(np.random.default_rng(children[3]), confidence) if screen else None
    settings = {
        "users": users,
        "days": days,
        "pre_days": pre_days,
        "seed": seed,
        "batch": batch,
        "exploration": float(exploration),
        "logging_policy": logger_policy.name,
        "carts_per_day": env.config.carts_per_day,
        "policies": {name: policy.name for name, policy in policies.items()},
    }
    logger.info("experiment: %d test carts, %d pre-period carts", len(carts), len(pre))
    return ExperimentResult(
        carts=carts,
        pre_log=pre,
        arms=tuple(names),
        control=control,
        weights=shares,
        salt=salt,
        prescreen=ope_table,
        settings=settings,
    )
