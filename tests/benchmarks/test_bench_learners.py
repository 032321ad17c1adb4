"""Learner benchmarks, reported as ratios against references measured in the same run.

* VWLearner.probabilities per decision vs a raw ``vowpalwabbit.Workspace.predict`` on a
  pre-formatted 7-action example with 30 shared features (the wrapper's overhead).
* Batch throughput (decide + learn a block of rows) of LinUCB / linear TS vs VWLearner.

Sizes grow with ``CARTWISE_BENCH_SCALE`` (``small`` by default: a quick run; ``large`` under
``make bench``: 10x).
"""

from __future__ import annotations

import numpy as np
import pytest
import vowpalwabbit
from bench_utils import per_call_seconds, scale

from engine.actions import ACTION_NAMES
from engine.learners import VWLearner, make_learner

SCALE = int(scale(large=10))
ACTIONS = ACTION_NAMES
FEATURES = tuple(f"feature_{i:02d}" for i in range(30))
N_A, N_D = len(ACTIONS), len(FEATURES)
DECISIONS = 200 * SCALE
BATCH_ROWS = 2000 * SCALE


def _data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_D))
    eligible = rng.random((n, N_A)) < 0.8
    eligible[:, 0] = True
    actions = rng.integers(N_A, size=n)
    rewards = X[:, 0] * (actions == 3) + rng.normal(size=n)
    return X, eligible, actions, rewards


def test_bench_vw_probabilities_vs_raw_predict(benchmark):
    X, _eligible, actions, rewards = _data(0, 300)
    learner = VWLearner(ACTIONS, FEATURES, seed=0)
    learner.update_batch(X, actions, np.full(300, 1 / N_A), rewards)
    raw = vowpalwabbit.Workspace(
        "--cb_explore_adf --quiet --interactions UA --squarecb --random_seed 0"
    )
    x = X[0]
    example = ["shared |U " + " ".join(f"{n}:{v:.7g}" for n, v in zip(FEATURES, x, strict=True))]
    example += [f"|A id_{name} is_contact:1" for name in ACTIONS]
    for row, a, r in zip(X, actions, rewards, strict=True):  # a comparably trained reference model
        lines = [
            "shared |U " + " ".join(f"{n}:{v:.7g}" for n, v in zip(FEATURES, row, strict=True))
        ]
        lines += [f"|A id_{name} is_contact:1" for name in ACTIONS]
        lines[a + 1] = f"0:{-r:.7g}:{1 / N_A:.7g} " + lines[a + 1]
        raw.learn(lines)
    mask = np.ones(N_A, dtype=bool)

    raw_s = per_call_seconds(lambda: raw.predict(example), DECISIONS)
    learner_s = per_call_seconds(lambda: learner.probabilities(x, mask), DECISIONS)
    benchmark.extra_info.update(
        raw_predict_us=raw_s * 1e6,
        learner_probabilities_us=learner_s * 1e6,
        ratio_learner_over_raw=learner_s / raw_s,
    )
    probs = benchmark(learner.probabilities, x, mask)
    assert probs.shape == (N_A,) and abs(probs.sum() - 1.0) < 1e-12
    assert len(raw.predict(example)) == N_A


@pytest.mark.parametrize("name", ["linucb", "lints"])
def test_bench_linear_batch_throughput_vs_vw(benchmark, name):
    X, eligible, actions, rewards = _data(1, BATCH_ROWS)
    block = 1000

    def decide_and_learn(learner) -> None:
        for start in range(0, BATCH_ROWS, block):
            rows = slice(start, start + block)
            probs = learner.probabilities_batch(X[rows], eligible[rows])
            taken = probs[np.arange(probs.shape[0]), actions[rows]]
            taken = np.where(taken > 0, taken, 1.0)  # ineligible picks: any valid propensity
            learner.update_batch(X[rows], actions[rows], taken, rewards[rows])

    def fresh(kind: str):
        return make_learner(kind, ACTIONS, FEATURES, seed=0)

    vw_s = per_call_seconds(lambda: decide_and_learn(fresh("vw")), 1, repeats=2)
    linear_s = per_call_seconds(lambda: decide_and_learn(fresh(name)), 1, repeats=3)
    benchmark.extra_info.update(
        rows=BATCH_ROWS,
        vw_rows_per_s=BATCH_ROWS / vw_s,
        linear_rows_per_s=BATCH_ROWS / linear_s,
        speedup_linear_over_vw=vw_s / linear_s,
    )
    learner = fresh(name)
    benchmark.pedantic(decide_and_learn, args=(learner,), rounds=1, iterations=1)
    assert learner.n_updates == BATCH_ROWS
