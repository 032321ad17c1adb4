"""Section 4 of ``cartwise run``: candidate policies scored on the engine's decision log.

Each target is evaluated on the logged rows with :func:`engine.ope.logs.evaluate_decision_log`
and put beside its *truth on the same carts*: ``mean_i sum_a pi(a | x_i) q(x_i, a)``, where ``q``
is the simulator's true expected profit of every action for the shopper's state at decision time
and ``pi`` the target's distribution over the actions the engine could take there (the same matrix
the estimators use). Importance-weight diagnostics (:mod:`engine.ope.diagnostics`) and their
plain warnings ride along on every row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.ope.logs import (
    DEFAULT_REWARD_MODEL,
    LogDataset,
    evaluate_decision_log,
    reward_model_features,
    reward_scale,
    target_probabilities,
)
from engine.ope.merge import DEFAULT_CI
from engine.ope.reward_model import cross_fit_reward_moments
from policies import make_policy

OPE_ESTIMATORS = ("ipw", "snipw", "dm", "dr", "sndr")


def truth_matrix(decisions: pd.DataFrame, data: LogDataset) -> np.ndarray:
    """``(n, A)`` true expected profit of every action on the log's rows, in the log's order."""
    truth = decisions.set_index("decision_id").loc[list(data.decision_ids)]
    missing = [a for a in data.action_names if f"er_{a}" not in truth.columns]
    if missing:
        raise ValueError(
            f"decisions has no 'er_{missing[0]}' column for the logged action {missing[0]!r}"
        )
    return truth[[f"er_{a}" for a in data.action_names]].to_numpy(dtype=np.float64)


def offline_evaluation(
    data: LogDataset,
    expected_rewards: np.ndarray,
    targets: Sequence[str],
    confidence: float = 0.95,
    seed: int = 0,
    estimators: Sequence[str] = OPE_ESTIMATORS,
    reward_model: str = DEFAULT_REWARD_MODEL,
    ci: str = DEFAULT_CI,
) -> pd.DataFrame:
    """One row per target and estimator: estimate, interval, truth, coverage and diagnostics.

    ``expected_rewards`` is :func:`truth_matrix` (true expected profit, rows and columns of
    ``data``). The DM/DR reward model (``reward_model``, cross-fitted on the logged features
    with the cart value as scale, as :func:`engine.ope.logs.evaluate_decision_log` does; mean
    and conditional variance) is fitted once and shared by the targets; intervals are ``ci``
    ones (default ``"auto"``: Hall's skewness-corrected interval for IPW and SNIPW, the
    variance-floored normal one for DR and SNDR, none for DM; see
    :func:`engine.ope.evaluate` and docs/ope-engine-logs.md). Columns:
    ``target, estimator, value, ci_low, ci_high, true_value, covered`` (nullable boolean, NA
    without an interval) and the target's weight
    diagnostics ``ess, max_weight, rare_share, warning`` (shared by its rows; empty warning when
    the overlap is fine).
    """
    if expected_rewards.shape != (data.n, data.n_actions):
        raise ValueError(
            f"expected_rewards has shape {expected_rewards.shape}, "
            f"must be {(data.n, data.n_actions)}"
        )
    model: dict[str, np.ndarray] = {}
    if data.features.shape[1]:
        scale = (
            None if reward_model == "logistic" else reward_scale(data.features, data.feature_names)
        )
        q, v = cross_fit_reward_moments(
            reward_model_features(data.features),
            data.actions,
            data.rewards,
            data.n_actions,
            np.random.default_rng(seed),
            model=reward_model,
            scale=scale,
        )
        model = {"estimated_rewards": q, "estimated_variances": v}
    rows, methods = [], {}
    for name in targets:
        policy = make_policy(name, seed=seed)
        probs = target_probabilities(data, policy)
        table = evaluate_decision_log(
            data,
            lambda X, names, eligible, p=probs: p,
            estimators=tuple(estimators),
            confidence=confidence,
            ci=ci,
            seed=seed,
            **model,
        )
        true_value = float(np.mean(np.sum(probs * expected_rewards, axis=1)))
        diag = table.attrs["diagnostics"]
        methods.update(table.attrs.get("ci_methods", {}))
        for estimator in (e for e in estimators if e in table.index):
            r = table.loc[estimator]
            rows.append(
                {
                    "target": name,
                    "estimator": estimator,
                    "value": r["value"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                    "true_value": true_value,
                    "covered": _covered(r["ci_low"], r["ci_high"], true_value),
                    "ess": diag.ess,
                    "max_weight": diag.max_weight,
                    "rare_share": diag.rare_share,
                    "warning": " ".join(diag.warnings),
                }
            )
    frame = pd.DataFrame(rows)
    frame["covered"] = frame["covered"].astype("boolean")  # NA: the estimator has no interval
    frame.attrs["logging_value"] = float(np.mean(data.rewards))
    frame.attrs["rows"] = data.n
    frame.attrs["ci"] = ci
    frame.attrs["ci_methods"] = {e: m for e, m in methods.items() if e in estimators}
    return frame


__all__ = ["OPE_ESTIMATORS", "offline_evaluation", "truth_matrix"]


def _covered(low: float, high: float, truth: float) -> bool | None:
    """Whether ``[low, high]`` holds ``truth``; None when there is no interval (NaN bounds)."""
    if np.isnan(low) or np.isnan(high):
        return None
    return bool(low <= truth <= high)
