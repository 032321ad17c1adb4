"""Benchmarks of the decide-path feature work, as ratios to a raw VW predict in the same run.

Reference: ``vowpalwabbit.Workspace.predict`` of a 7-action ``cb_explore_adf`` example with 30
shared features (what the learner costs anyway). Brief target: validate + transform with CF
under ~15 us (~0.6x the reference) so that all of ``decide`` stays within 2x. Measured on a busy
2-core machine: 0.7x when timed alone, ~1.0x when interleaved with VW calls (cache pressure).
Ratios go to ``benchmark.extra_info``; the asserts are loose regression guards and only run when
benchmarking is enabled (CI runs ``--benchmark-disable``: each function is smoke-tested once).

``CARTWISE_BENCH_SCALE`` (``small`` = 1 by default, ``large`` = 5 as set by ``make bench``, or a
number) multiplies the shop size and the timing sample.
"""

from __future__ import annotations

import statistics
import time

import context_factory as factory
import numpy as np
import pytest
from bench_utils import scale

from engine.actions import ACTION_NAMES
from engine.cf import CFModel, interactions_from_contexts
from engine.context import validate_context
from engine.features import FeatureBuilder
from engine.profile import profile_matrix
from engine.risk import RiskModel

SCALE = scale(large=5)
ACTIONS = ACTION_NAMES


@pytest.fixture(scope="module")
def setup():
    world = factory.make_world(seed=0, n_users=int(300 * SCALE), n_items=int(300 * min(SCALE, 10)))
    contexts = factory.make_contexts(world, seed=1)
    cf = CFModel(seed=0).fit(interactions_from_contexts(contexts))
    X = profile_matrix(contexts)
    y = (np.random.default_rng(0).random(len(X)) < 0.2).astype(int)
    risk = RiskModel().fit(X, y)
    return contexts, FeatureBuilder(cf=cf, risk=risk), FeatureBuilder()


@pytest.fixture(scope="module")
def vw_predict():
    """A raw VW predict on a 7-action example with 30 shared features, after some learning."""
    import vowpalwabbit

    rng = np.random.default_rng(0)
    workspace = vowpalwabbit.Workspace("--cb_explore_adf --epsilon 0.05 --quiet")

    def example(values, label=None):
        shared = "shared |s " + " ".join(f"f{i}:{v:.4f}" for i, v in enumerate(values))
        lines = [shared]
        for a, name in enumerate(ACTIONS):
            prefix = f"0:{label[1]:.3f}:{1 / len(ACTIONS):.4f} " if label and label[0] == a else ""
            lines.append(f"{prefix}|a act={name}")
        return lines

    for _ in range(300):
        values = rng.normal(size=30)
        workspace.learn(example(values, (int(rng.integers(7)), float(rng.normal()))))
    examples = [example(rng.normal(size=30)) for _ in range(64)]
    state = {"i": 0}

    def predict():
        state["i"] = (state["i"] + 1) % len(examples)
        return workspace.predict(examples[state["i"]])

    yield predict
    workspace.finish()


def _cycle(contexts, fn):
    state = {"i": 0}
    n = len(contexts)

    def call():
        state["i"] = (state["i"] + 1) % n
        return fn(contexts[state["i"]])

    return call


def _paired_medians(ref, target, calls: int, rounds: int) -> tuple[float, float]:
    """Median per-call seconds of two functions, each call timed alone, interleaved in rounds.

    Per-call medians resist the preemptions of a busy machine better than batch means.
    """
    clock = time.perf_counter_ns
    ref_times, target_times = [], []
    for _ in range(rounds):
        for fn, store in ((ref, ref_times), (target, target_times)):
            for _ in range(calls):
                start = clock()
                fn()
                store.append(clock() - start)
    return statistics.median(ref_times) * 1e-9, statistics.median(target_times) * 1e-9


def _run(benchmark, vw_predict, target, name: str, max_ratio: float) -> None:
    result = benchmark(target)
    if benchmark.disabled:
        assert result is None or np.all(np.isfinite(result))
        return
    ref_s, target_s = _paired_medians(vw_predict, target, calls=100, rounds=int(30 * SCALE))
    ratio = target_s / ref_s
    benchmark.extra_info.update(
        {
            "reference": "vw cb_explore_adf predict, 7 actions, 30 shared features",
            "reference_us": round(ref_s * 1e6, 3),
            f"{name}_us": round(target_s * 1e6, 3),
            f"{name}_over_vw_predict": round(ratio, 4),
        }
    )
    assert ratio < max_ratio, f"{name} / vw predict == {ratio:.3f}, target < {max_ratio}"


def _validate_and_transform(builder):
    def run(ctx):
        return builder.transform(
            validate_context(ctx)
        )  # as the engine does: the parsed record feeds the features

    return run


def test_bench_validate_and_transform_with_cf(benchmark, setup, vw_predict):
    contexts, full, _ = setup
    target = _cycle(contexts, _validate_and_transform(full))
    _run(benchmark, vw_predict, target, "validate_transform_cf", 1.5)


def test_bench_validate_and_transform_no_cf(benchmark, setup, vw_predict):
    contexts, _, bare = setup
    target = _cycle(contexts, _validate_and_transform(bare))
    _run(benchmark, vw_predict, target, "validate_transform_bare", 0.8)


def test_bench_validate_only(benchmark, setup, vw_predict):
    contexts, _, _ = setup

    def validate(ctx):
        validate_context(ctx)

    _run(benchmark, vw_predict, _cycle(contexts, validate), "validate", 0.5)


def test_bench_vw_reference(benchmark, vw_predict):
    """The reference itself, so its absolute time shows in the benchmark table."""
    benchmark(vw_predict)
