"""Before Cartwise: the shop's current practice, whose carts fit the CF and risk models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from engine.cf import (
    CFModel,
    holdout_last_orders,
    interactions_from_contexts,
    precision_recall_at_k,
)
from engine.profile import PROFILE_FEATURES, profile_matrix
from engine.risk import RiskModel, expected_calibration_error, reliability_table, roc_auc
from simulator.shop.constants import ACTION_NAMES

HOLDOUT_SHARE = 0.3  # carts the shop leaves alone (a standing holdout): they label the risk model


@dataclass
class Warmup:
    """The models fitted before Cartwise, and how well the risk model does on held-out carts.

    ``risk_auc`` and ``risk_ece`` are those of a risk model fitted on the first half of the
    holdout carts and scored on the second half; ``truth_auc`` is the AUC of those carts' true
    ``p0`` against the same realised returns (the ceiling); ``reliability`` is the
    :func:`~engine.risk.reliability_table` of that half.
    """

    cf: CFModel
    risk: RiskModel
    cf_precision: float
    popularity_precision: float
    risk_auc: float
    carts: int
    truth_auc: float = float("nan")
    risk_ece: float = float("nan")
    reliability: dict[str, np.ndarray] | None = None


def current_practice(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A reminder to everyone reachable, except a 30% holdout that gets nothing."""
    recall = ACTION_NAMES.index("recall_message")
    actions = np.where(mask[:, recall] > 0, recall, ACTION_NAMES.index("coupon_10"))
    actions = np.where(mask[np.arange(len(mask)), actions] > 0, actions, 0)
    return np.where(rng.random(len(mask)) < HOLDOUT_SHARE, 0, actions)


def run_warmup(carts: int, seed: int, shop: Mapping[str, Any], progress: bool = True) -> Warmup:
    """Simulate ``carts`` carts under current practice, fit CF and the abandonment-risk model."""
    batch = min(1024, carts)
    envs = gym.make_vec(
        "CartRecovery-v0", num_envs=batch, vectorization_mode="vector_entry_point", **shop
    )
    rng = np.random.default_rng(seed + 1)
    _, info = envs.reset(seed=seed)
    contexts: list[dict] = []
    holdout_ctx: list[dict] = []
    holdout_y: list[bool] = []
    holdout_p: list[float] = []
    for _ in tqdm(
        range(-(-carts // batch)),
        desc="warm-up (current practice)",
        unit="batch",
        disable=not progress,
    ):
        actions = current_practice(info["action_mask"], rng)
        batch_ctx = list(info["context"])
        p_return = info["p_return"]
        _, _, _, _, info_next = envs.step(actions)
        converted = info_next["final_info"]["converted"]
        contexts.extend(batch_ctx)
        for i in np.flatnonzero(actions == 0):
            holdout_ctx.append(batch_ctx[i])
            holdout_y.append(bool(converted[i]))
            holdout_p.append(float(p_return[i]))
        info = info_next
    train, test = holdout_last_orders(contexts)
    cf_eval = CFModel(n_factors=16, seed=seed).fit(train)
    cf_p = precision_recall_at_k(cf_eval, train, test, k=10).precision
    pop_p = precision_recall_at_k(cf_eval, train, test, k=10, method="popularity").precision
    cf = CFModel(n_factors=16, seed=seed).fit(interactions_from_contexts(contexts))
    X = profile_matrix(holdout_ctx)
    y = np.array(holdout_y, dtype=int)
    half = len(y) // 2
    risk_eval = RiskModel(feature_names=PROFILE_FEATURES).fit(X[:half], y[:half])
    predicted = risk_eval.predict_proba(X[half:])
    auc = roc_auc(predicted, y[half:])
    truth_auc = roc_auc(holdout_p[half:], y[half:])
    ece = expected_calibration_error(predicted, y[half:])
    table = reliability_table(predicted, y[half:])
    risk = RiskModel(feature_names=PROFILE_FEATURES).fit(X, y)
    return Warmup(cf, risk, cf_p, pop_p, auc, len(contexts), truth_auc, ece, table)
