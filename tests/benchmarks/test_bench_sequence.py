"""CartRecoverySequence-v0 speed per touch, as ratios measured in the same run, and the coverage of
the sequence OPE intervals.

Goals (issue #24): the native vector env >= 10x faster per touch than the single env; one touch of
the single env <= 2x one cart (reset + step) of CartRecovery-v0; sequence OPE intervals cover the
exact truth at 93-97% over seeds.

Both envs solve their carts' flows exactly (dynamic programming, in blocks of carts), a cost per
cart that a few calls may or may not include; so each figure is the total time over several
alternating blocks of calls, each block long enough to span several solved blocks of carts.
"""

import math
import time

import gymnasium as gym
import pytest
from bench_utils import LARGE, record_ratio
from env_bench import single_cart, vector_step

import simulator  # noqa: F401  (registers the envs)
from simulator.training.sequence_ope import sequence_coverage

BLOCKS = 5
TOUCHES = 6_000 if LARGE else 1_500  # single-env touches per block (a solved block: ~600)
BATCH = 1024


def _single_touch():
    env = gym.make("CartRecoverySequence-v0")
    env.reset(seed=0)
    counter = iter(range(10**12))

    def touch():
        _, _, terminated, _, _ = env.step(next(counter) % 7)
        if terminated:
            env.reset()

    for _ in range(2000 if LARGE else 100):
        touch()
    return touch


def alternating_seconds(*timed):
    """Per-call seconds of each ``(fn, calls)``, totals over ``BLOCKS`` alternating blocks."""
    totals = [0.0] * len(timed)
    for _ in range(BLOCKS):
        for i, (fn, calls) in enumerate(timed):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            totals[i] += time.perf_counter() - start
    return [total / (BLOCKS * calls) for total, (_, calls) in zip(totals, timed, strict=True)]


def test_single_touch_vs_single_step_cart(benchmark):
    touch, cart = _single_touch(), single_cart()
    benchmark(touch)
    if not benchmark.disabled:
        subject, reference = alternating_seconds((touch, TOUCHES), (cart, TOUCHES))
        record_ratio(benchmark, "sequence_touch_over_single_step_cart", subject, reference)


def test_vector_touch_speedup_over_single_env(benchmark):
    touch, batch = _single_touch(), vector_step("CartRecoverySequence-v0", BATCH)
    benchmark(batch)
    if not benchmark.disabled:
        steps = max(TOUCHES // 100, 5)  # 1024 touches per step: several solved blocks
        single, vector = alternating_seconds((touch, TOUCHES), (batch, steps))
        record_ratio(benchmark, "sequence_single_touch_over_vector_touch", single, vector / BATCH)


COVERAGE_SEEDS = 400 if LARGE else 40
COVERAGE_FLOWS = 3_000
LOGGING_FLOWS = {
    "target": ["recall_message", "recall_message", "coupon_10"],
    "reminders": ["recall_message"] * 3,
}


@pytest.mark.parametrize("logging", list(LOGGING_FLOWS))
def test_sequence_ope_interval_coverage(benchmark, logging):
    """Coverage of the exact truth by the 95% intervals of PDIS and DR for the flow reminder,
    reminder, coupon_10, logged by ``logging`` mixed 50% with uniform, 3,000 flows per seed.

    Recorded: ``coverage_<estimator>/<ci>`` and the misses below / above. Asserted for the
    default interval (the variance floor): at least 95% minus 4 binomial sd over the seeds (400
    seeds at the large size: 90.6%; 40 seeds: 81%), a bound that catches a broken interval;
    the 93-97% goal is read from the recorded figures (docs/benchmarks.md).
    """
    cis = ("floor", "skew-t", "hall", "normal")
    cis += ("bootstrap-t",) if LARGE else ()
    seeds = range(COVERAGE_SEEDS)
    table = benchmark.pedantic(
        sequence_coverage,
        args=(seeds, COVERAGE_FLOWS, LOGGING_FLOWS[logging]),
        kwargs={"cis": cis},
        rounds=1,
        iterations=1,
    )
    info = benchmark.extra_info
    info.update(seeds=COVERAGE_SEEDS, flows=COVERAGE_FLOWS, logging=logging)
    for key, row in table.items():
        info[f"coverage_{key}"] = round(row["covered"] / row["seeds"], 4)
        info[f"below_{key}"], info[f"above_{key}"] = row["below"], row["above"]
    floor = 0.95 - 4 * math.sqrt(0.95 * 0.05 / COVERAGE_SEEDS)
    for name in ("pdis", "dr"):
        row = table[f"{name}/floor"]
        assert row["covered"] / row["seeds"] >= floor, (name, row)
