"""CartRecoverySequence-v0 speed per touch, as ratios measured in the same run.

Goals (issue #24): the native vector env >= 10x faster per touch than the single env; one touch of
the single env <= 2x one cart (reset + step) of CartRecovery-v0.

Both envs solve their carts' flows exactly (dynamic programming, in blocks of carts), a cost per
cart that a few calls may or may not include; so each figure is the total time over several
alternating blocks of calls, each block long enough to span several solved blocks of carts.
"""

import time

import gymnasium as gym
from bench_utils import LARGE, record_ratio
from env_bench import single_cart, vector_step

import simulator  # noqa: F401  (registers the envs)

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
