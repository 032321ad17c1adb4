"""Off-policy pre-screen of the arms on the pre-period log, before the A/B test runs.

The pre-period is logged by the current policy with a little uniform exploration, with exact
propensities. Each arm's policy is then evaluated on that log with :func:`engine.ope.evaluate`:

- a policy that does not learn is evaluated on every logged cart, with its exact probabilities;
- a learning policy is evaluated honestly out of sample: a copy of it (the arm's state before the
  test) is trained on the carts of the first half of the pre-period (in log order, from the logged
  propensities) and, frozen, gives its probabilities on the second half, where it is evaluated.

The reward model of the DR estimator is ridge regression on the simulator's observation vector
(``info``-free features of the cart and shopper), cross-fitted over two folds. The effect of an
arm against the control is the mean of the paired per-cart DR differences on the carts where both
were evaluated, with a normal interval. Because the log knows the truth, the table also gives each
policy's TRUE value on the same carts: ``mean_i sum_a pi(a|x_i) * expected_reward(x_i, a)``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from engine import ope
from policies.base import Policy
from simulator.experiments.arms import RowView

__all__ = ["PreScreen"]

logger = logging.getLogger(__name__)

MIN_PRESCREEN_ROWS = 20
"""Fewest logged carts (per evaluated set) for an OPE estimate."""

PRESCREEN_ESTIMATORS = ("ipw", "snipw", "dr")
"""The estimators the pre-screen reports (names in :data:`engine.ope.ESTIMATORS`)."""


class PreScreen:
    """Collects the pre-period log batch by batch and evaluates the arms on it at the end.

    ``split_time``: the first half of the pre-period ends there (learners train before it).
    """

    def __init__(self, arms: Mapping[str, Policy], control: str, split_time: float) -> None:
        self.control = control
        self.split_time = float(split_time)
        self._fixed = {name: policy for name, policy in arms.items() if not policy.learns}
        self._learners = {
            name: copy.deepcopy(policy) for name, policy in arms.items() if policy.learns
        }
        self._names = list(arms)
        self._columns: dict[str, list[np.ndarray]] = {
            key: [] for key in ("obs", "actions", "probs", "rewards", "truth", "second")
        }
        self._targets: dict[str, list[np.ndarray]] = {name: [] for name in arms}

    def observe(
        self,
        contexts: Sequence[Mapping[str, Any]],
        mask: np.ndarray,
        truth: np.ndarray,
        times: np.ndarray,
        obs: np.ndarray,
        actions: np.ndarray,
        probs: np.ndarray,
        rewards: np.ndarray,
    ) -> None:
        """Record one batch of logged carts (after their outcome is known)."""
        n, n_actions = mask.shape
        second = times >= self.split_time
        first_rows, second_rows = np.flatnonzero(~second), np.flatnonzero(second)
        for name, policy in self._fixed.items():
            self._targets[name].append(_probabilities(policy, contexts, mask, truth))
        for name, policy in self._learners.items():
            if first_rows.size:
                policy.update_batch(
                    RowView(contexts, first_rows),
                    actions[first_rows],
                    probs[first_rows],
                    rewards[first_rows],
                    truth[first_rows] if policy.needs_truth else None,
                )
            target = np.full((n, n_actions), np.nan)
            if second_rows.size:
                target[second_rows] = _probabilities(
                    policy, RowView(contexts, second_rows), mask[second_rows], truth[second_rows]
                )
            self._targets[name].append(target)
        for key, value in (
            ("obs", obs),
            ("actions", actions),
            ("probs", probs),
            ("rewards", rewards),
            ("truth", truth),
            ("second", second),
        ):
            self._columns[key].append(np.asarray(value))

    def evaluate(self, rng: np.random.Generator, confidence: float = 0.95) -> pd.DataFrame | None:
        """One row per arm: OPE values, the paired effect against control, and the truth.

        Returns ``None`` (with a warning) when the log is too short to evaluate.
        """
        if not self._columns["actions"]:
            return None
        cols = {key: np.concatenate(parts) for key, parts in self._columns.items()}
        targets = {name: np.concatenate(parts) for name, parts in self._targets.items()}
        n, n_actions = cols["truth"].shape
        if n < MIN_PRESCREEN_ROWS:
            logger.warning(
                "pre-screen skipped: %d logged carts, need at least %d", n, MIN_PRESCREEN_ROWS
            )
            return None
        q_hat = ope.cross_fit_rewards(
            cols["obs"].astype(np.float64),
            cols["actions"],
            cols["rewards"],
            n_actions,
            rng,
            n_folds=2,
            model="ridge",
        )
        z = float(stats.norm.ppf(0.5 + confidence / 2.0))
        control_target = targets[self.control]
        rows_out = []
        for name in self._names:
            target = targets[name]
            rows = np.flatnonzero(np.isfinite(target).all(axis=1))
            row: dict[str, Any] = {
                "arm": name,
                "learns": name in self._learners,
                "basis": (
                    "second half, trained on first half"
                    if name in self._learners
                    else "all pre-period carts"
                ),
                "n": int(rows.size),
            }
            if rows.size < MIN_PRESCREEN_ROWS:
                logger.warning("pre-screen of arm %r skipped: %d carts", name, rows.size)
                rows_out.append(row)
                continue
            table = ope.evaluate(
                cols["rewards"][rows],
                cols["actions"][rows],
                cols["probs"][rows],
                target[rows],
                estimated_rewards=q_hat[rows],
                estimators=PRESCREEN_ESTIMATORS,
                confidence=confidence,
            )
            row.update({est: float(table.loc[est, "value"]) for est in PRESCREEN_ESTIMATORS})
            row.update(
                {
                    "dr_ci_low": float(table.loc["dr", "ci_low"]),
                    "dr_ci_high": float(table.loc["dr", "ci_high"]),
                    "ess": float(table.loc["dr", "ess"]),
                    "true_value": float((target[rows] * cols["truth"][rows]).sum(axis=1).mean()),
                }
            )
            both = rows[np.isfinite(control_target[rows]).all(axis=1)]
            if name != self.control and both.size >= MIN_PRESCREEN_ROWS:
                diff = _dr_terms(target[both], cols, q_hat, both) - _dr_terms(
                    control_target[both], cols, q_hat, both
                )
                effect, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(both.size))
                true_diff = ((target[both] - control_target[both]) * cols["truth"][both]).sum(
                    axis=1
                )
                row.update(
                    {
                        "effect": effect,
                        "effect_ci_low": effect - z * se,
                        "effect_ci_high": effect + z * se,
                        "effect_n": int(both.size),
                        "true_effect": float(true_diff.mean()),
                    }
                )
            rows_out.append(row)
        table = pd.DataFrame(rows_out)
        table.attrs.update(
            {
                "confidence": confidence,
                "control": self.control,
                "n_logged": n,
                "logging_value": float(cols["rewards"].mean()),
            }
        )
        return table


def _dr_terms(
    target: np.ndarray, cols: Mapping[str, np.ndarray], q_hat: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Per-cart doubly robust terms ``sum_a pi q_hat + pi(a_i)/mu_i (r_i - q_hat(a_i))``."""
    actions = cols["actions"][rows]
    idx = np.arange(rows.size)
    q = q_hat[rows]
    weight = target[idx, actions] / cols["probs"][rows]
    return (target * q).sum(axis=1) + weight * (cols["rewards"][rows] - q[idx, actions])


def _probabilities(
    policy: Policy, contexts: Sequence[Mapping[str, Any]], mask: np.ndarray, truth: np.ndarray
) -> np.ndarray:
    return np.asarray(
        policy.probabilities_batch(contexts, mask, truth if policy.needs_truth else None),
        dtype=np.float64,
    )
