"""Simulated decision logs with exact propensities and known truth, for off-policy evaluation tests.

Used by ``tests/simulator/test_ope_truth_simulated.py`` and
``tests/benchmarks/test_bench_ope_coverage.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pandas as pd
from bench_utils import LARGE

import simulator
from engine import ope
from engine.ope.logs import evaluate_decision_log, read_log_dataset, reward_model_features
from engine.sampling import sample_actions
from simulator.shop.world import OBS_HIGH, OBS_LOW, OBS_NAMES

ACTIONS: tuple[str, ...] = tuple(simulator.ACTION_NAMES)
FEATURES: tuple[str, ...] = tuple(OBS_NAMES)
UNBIASED = ("ipw", "snipw", "dr", "sndr")
ESTIMATORS = (*UNBIASED, "dm", "switch-dr")
N_SHOPPERS = 2_000
UNIFORM_SHARE = 0.5
HARD_UNIFORM_SHARE = 0.2
DESIGN_EFFECT = 1.2
Target = Callable[[np.ndarray, Sequence[str], np.ndarray], np.ndarray]


# ---------------------------------------------------------------- policies on observations
def _one_hot(choice: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """All mass on ``choice`` where eligible, else on ``none`` (always eligible)."""
    rows = np.arange(eligible.shape[0])
    choice = np.where(eligible[rows, choice], choice, ACTIONS.index("none"))
    out = np.zeros(eligible.shape)
    out[rows, choice] = 1.0
    return out


def uniform_policy(X: np.ndarray, names: Sequence[str], eligible: np.ndarray) -> np.ndarray:
    return eligible / eligible.sum(axis=1, keepdims=True)


def static_policy(action: str) -> Target:
    def policy(X: np.ndarray, names: Sequence[str], eligible: np.ndarray) -> np.ndarray:
        return _one_hot(np.full(eligible.shape[0], ACTIONS.index(action)), eligible)

    policy.__name__ = f"always_{action}"
    return policy


def rule_policy(X: np.ndarray, names: Sequence[str], eligible: np.ndarray) -> np.ndarray:
    """Coupon for price evidence, urgency for quick abandoners, a reminder otherwise."""
    col = {n: j for j, n in enumerate(names)}
    choice = np.full(X.shape[0], ACTIONS.index("recall_message"))
    choice[X[:, col["log_minutes_cart_to_abandon"]] < math.log1p(5.0)] = ACTIONS.index(
        "time_limited_offer"
    )
    price = (X[:, col["shipping_page_views"]] >= 2) | (X[:, col["coupon_order_share"]] >= 0.3)
    choice[price] = ACTIONS.index("coupon_10")
    return _one_hot(choice, eligible)


def linear_policy(seed: int = 7, scale: float = 3.0) -> Target:
    """Softmax over eligible actions of fixed random linear scores of the [0, 1]-scaled features."""
    weights = np.random.default_rng(seed).normal(size=(len(ACTIONS), len(FEATURES)))

    def policy(X: np.ndarray, names: Sequence[str], eligible: np.ndarray) -> np.ndarray:
        cols = [list(names).index(f) for f in FEATURES]
        unit = (X[:, cols] - OBS_LOW) / (OBS_HIGH - OBS_LOW)
        scores = scale * unit @ weights.T
        scores = np.where(eligible, scores - scores.max(axis=1, keepdims=True), -np.inf)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    return policy


def logging_policy(
    X: np.ndarray, names: Sequence[str], eligible: np.ndarray, uniform_share: float = UNIFORM_SHARE
) -> np.ndarray:
    """The exploring logger: the rule, mixed with uniform over the eligible actions."""
    return (1.0 - uniform_share) * rule_policy(X, names, eligible) + uniform_share * uniform_policy(
        X, names, eligible
    )


TARGETS: dict[str, Target] = {
    "none": static_policy("none"),
    "coupon_10": static_policy("coupon_10"),
    "uniform": uniform_policy,
    "rule": rule_policy,
    "linear": linear_policy(),
}


# ---------------------------------------------------------------- simulation
@dataclass(frozen=True)
class SimulatedLog:
    """Carts logged by ``LOGGING`` with the simulator's truth, in read_log's layout."""

    frame: pd.DataFrame
    features: np.ndarray  # (n, 24) observations
    eligible: np.ndarray  # (n, 7) simulator action mask
    expected_reward: np.ndarray  # (n, 7) true expected profit

    def true_value(self, target: Target) -> float:
        """Mean over the logged carts of sum_a pi(a|x) q(x, a)."""
        pi = target(self.features, FEATURES, self.eligible)
        return float(np.mean(np.sum(pi * self.expected_reward, axis=1)))


def log_frame(features, probs, actions, rewards) -> pd.DataFrame:
    """A frame with the columns of read_log that off-policy evaluation uses."""
    n = len(actions)
    frame = {
        "decision_id": [f"c{i:07d}" for i in range(n)],
        "action": np.asarray(ACTIONS, dtype=object)[actions],
        "probability": probs[np.arange(n), actions],
        "reward": rewards,
        "reward_source": np.full(n, "reward", dtype=object),
        "fallback": np.zeros(n, dtype=bool),
    }
    frame.update({f"p_{a}": probs[:, j] for j, a in enumerate(ACTIONS)})
    frame.update({f"f_{f}": features[:, j].astype(np.float64) for j, f in enumerate(FEATURES)})
    return pd.DataFrame(frame)


def simulate_log(
    n_carts: int,
    seed: int,
    batch: int = 1_000,
    n_shoppers: int = N_SHOPPERS,
    uniform_share: float = UNIFORM_SHARE,
) -> SimulatedLog:
    """Log ``n_carts`` carts of a fresh shop built from ``seed``."""
    rng = np.random.default_rng(seed)
    env = gym.make_vec(
        "CartRecovery-v0",
        num_envs=batch,
        vectorization_mode="vector_entry_point",
        n_shoppers=n_shoppers,
    )
    obs, info = env.reset(seed=int(rng.integers(2**31)))
    parts: list[tuple[np.ndarray, ...]] = []
    for _ in range(-(-n_carts // batch)):
        eligible = info["action_mask"].astype(bool)
        probs = logging_policy(obs.astype(np.float64), FEATURES, eligible, uniform_share)
        actions = sample_actions(probs, rng)
        expected = info["expected_reward"]
        features = obs.astype(np.float64)
        obs, reward, _, _, info = env.step(actions)
        parts.append((features, eligible, expected, probs, actions, reward))
    features, eligible, expected, probs, actions, reward = (
        np.concatenate(p)[:n_carts] for p in zip(*parts, strict=True)
    )
    env.close()
    return SimulatedLog(log_frame(features, probs, actions, reward), features, eligible, expected)


def coverage_table(
    seeds: Sequence[int],
    n_carts: int,
    estimators: Sequence[str] = ESTIMATORS,
    confidence: float = 0.95,
    uniform_share: float = UNIFORM_SHARE,
) -> pd.DataFrame:
    """One row per (seed, target, estimator): estimate, interval, truth and whether it is covered.

    The reward model is cross-fitted once per seed (same as ``evaluate_decision_log``'s default)
    and shared by the targets.
    """
    rows = []
    for seed in seeds:
        sim = simulate_log(n_carts, seed, uniform_share=uniform_share)
        data = read_log_dataset(sim.frame)
        q = ope.cross_fit_rewards(
            reward_model_features(data.features),
            data.actions,
            data.rewards,
            data.n_actions,
            np.random.default_rng(seed),
        )
        for name, target in TARGETS.items():
            truth = sim.true_value(target)
            table = evaluate_decision_log(
                data,
                target,
                estimated_rewards=q,
                estimators=list(estimators),
                confidence=confidence,
            )
            for est in estimators:
                low, high = table.loc[est, ["ci_low", "ci_high"]]
                rows.append(
                    {
                        "seed": seed,
                        "target": name,
                        "estimator": est,
                        "truth": truth,
                        "value": table.loc[est, "value"],
                        "ci_low": low,
                        "ci_high": high,
                        "covered": bool(low <= truth <= high),
                    }
                )
    return pd.DataFrame(rows)


def binomial_band(
    n: int, level: float = 0.95, n_sd: float = 4.0, design_effect: float = DESIGN_EFFECT
) -> tuple[float, float]:
    """``level +- n_sd`` standard deviations of a coverage over ``n`` intervals (binomial sd
    inflated by the design effect of correlated intervals)."""
    sd = math.sqrt(level * (1 - level) * design_effect / n)
    return level - n_sd * sd, level + n_sd * sd


# ---------------------------------------------------------------- the benchmark
N_SEEDS = 200 if LARGE else 20
N_CARTS = 5_000
