"""The embedded engine on simulated checkout traffic: decide, outcome, reward, with the truth."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from engine import DecisionEngine
from policies import RulePolicy
from simulator.shop.constants import ACTION_NAMES


@dataclass
class EngineRun:
    """What the engine did, with the simulator's truth beside every decision."""

    #: decision_id, action, type, value, none, oracle, converted, coupon_cost, fallback, p_return
    #: (the cart's true p0), rule_action and oracle_action (indices), er_<action>...
    decisions: pd.DataFrame
    health: dict[str, Any]
    log_path: Path
    model_version: str


def run_engine(
    engine: DecisionEngine,
    carts: int,
    seed: int,
    shop: Mapping[str, Any],
    log_path: Path,
    progress: bool = True,
) -> EngineRun:
    """Serve ``carts`` abandoned carts through ``engine`` exactly as checkout would."""
    env = gym.make("CartRecovery-v0", **shop)
    _, info = env.reset(seed=seed)
    rows = []
    index = {a: i for i, a in enumerate(ACTION_NAMES)}
    rule = RulePolicy()
    for _ in tqdm(
        range(carts),
        desc="engine on live traffic",
        unit="cart",
        disable=not progress,
        mininterval=0.5,
    ):
        decision = engine.decide(info["context"])
        a = index[decision.action]
        _, reward, _, _, step = env.step(a)
        engine.reward(decision.decision_id, reward, timestamp=info["context"]["timestamp"] + 3600.0)
        er = info["expected_reward"]
        mask = info["action_mask"] > 0
        rule_action = int(rule.probabilities(info["context"], mask).argmax())
        rows.append(
            (
                decision.decision_id,
                decision.action,
                info["shopper_type"],
                er[a],
                er[0],
                er[mask].max(),
                bool(step["converted"]),
                step["coupon_cost"],
                decision.fallback,
                info["p_return"],
                rule_action,
                int(np.where(mask, er, -np.inf).argmax()),
                *er,
            )
        )
        _, info = env.reset()
    engine.flush()
    columns = [
        "decision_id",
        "action",
        "type",
        "value",
        "none",
        "oracle",
        "converted",
        "coupon_cost",
        "fallback",
        "p_return",
        "rule_action",
        "oracle_action",
    ] + [f"er_{a}" for a in ACTION_NAMES]
    return EngineRun(
        pd.DataFrame(rows, columns=columns), engine.health(), log_path, engine.model_version
    )
