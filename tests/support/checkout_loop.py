"""The checkout benchmark's workload: its raw VW reference and its lagged outcomes.

Shared by ``tests/benchmarks/test_bench_engine.py`` and the profiling scripts next to this file
(``decide_stages.py``, ``callgrind_checkout.py``), so that all of them time the same thing.
Checkout hears of a purchase long after the decision: :class:`LaggedOutcomes` reports, after
each decision, the outcome of the one made ``lag`` calls earlier, with a reward of 1 for a third
of them drawn from a seeded generator (the same rewards, so the same model, in every run).

>>> from engine import DecisionEngine
>>> from env_contexts import simulator_contexts
>>> eng = DecisionEngine(seed=0, learner="linucb")
>>> report = LaggedOutcomes(eng, lag=2, seed=0)
>>> for ctx in simulator_contexts(5):
...     report(ctx, eng.decide(ctx))
>>> eng.health()["rewards"], len(report.waiting)
(3, 2)
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import vowpalwabbit

LAG = 50
"""Decisions made between a decision and its outcome."""
REWARD_RATE = 1 / 3
"""Share of outcomes with a reward of 1 (the rest 0)."""
OUTCOME_DELAY_S = 60.0
"""An outcome's timestamp: its decision's plus this."""


class LaggedOutcomes:
    """Report the outcome of the decision made ``lag`` calls before each new one."""

    def __init__(self, engine: Any, lag: int = LAG, seed: int = 0) -> None:
        self.engine = engine
        self.lag = lag
        self.rng = np.random.default_rng(seed)
        self.waiting: collections.deque[tuple[str, float]] = collections.deque()

    def __call__(self, ctx: Mapping[str, Any], decision: Any) -> None:
        self.waiting.append((decision.decision_id, float(ctx["timestamp"])))
        if len(self.waiting) > self.lag:
            decision_id, at = self.waiting.popleft()
            reward = 1.0 if self.rng.random() < REWARD_RATE else 0.0
            self.engine.reward(decision_id, reward, at + OUTCOME_DELAY_S)


def timed_checkout(engine: Any, lag: int = LAG, seed: int = 0) -> Callable[[Mapping], int]:
    """``call(ctx)``: decide (timed, nanoseconds returned), then report an older outcome."""
    report = LaggedOutcomes(engine, lag, seed)
    clock = time.perf_counter_ns

    def decide_then_report(ctx: Mapping[str, Any]) -> int:
        start = clock()
        decision = engine.decide(ctx)
        took = clock() - start
        report(ctx, decision)
        return took

    return decide_then_report


def raw_vw_predict() -> Callable[[Any], Any]:
    """A bare ``Workspace.predict`` of a 7-action example with 30 shared features (the reference).

    The workspace learns 200 examples first, so the prediction runs on non-zero weights.
    """
    vw = vowpalwabbit.Workspace("--cb_explore_adf -q UA --epsilon 0.05 --quiet")
    shared = "shared |U " + " ".join(f"f{i}:{0.1 * i:.3f}" for i in range(30))
    example = [shared] + [f"|A a{j}:1 depth:{j / 10:.1f}" for j in range(7)]
    labelled = [shared] + [
        f"0:{-1.0 if j == 2 else 0.0}:0.14 |A a{j}:1" if j == 2 else f"|A a{j}:1" for j in range(7)
    ]
    for _ in range(200):
        vw.learn(labelled)
    return lambda _: vw.predict(example)
