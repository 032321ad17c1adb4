"""CartRecoverySequence-v0 speed per touch, as ratios measured in the same run.

Goals (issue #24): the native vector env >= 10x faster per touch than the single env; one touch of
the single env <= 2x one cart (reset + step) of CartRecovery-v0.
"""

import gymnasium as gym
from bench_utils import LARGE, per_call_seconds, record_ratio
from env_bench import single_cart, vector_step

import simulator  # noqa: F401  (registers the envs)

CALLS = 20_000 if LARGE else 300
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


def test_single_touch_vs_single_step_cart(benchmark):
    touch, cart = _single_touch(), single_cart()
    benchmark(touch)
    if not benchmark.disabled:
        record_ratio(
            benchmark,
            "sequence_touch_over_single_step_cart",
            per_call_seconds(touch, CALLS),
            per_call_seconds(cart, CALLS),
        )


def test_vector_touch_speedup_over_single_env(benchmark):
    touch, batch = _single_touch(), vector_step("CartRecoverySequence-v0", BATCH)
    benchmark(batch)
    if not benchmark.disabled:
        single = per_call_seconds(touch, CALLS)
        vector = per_call_seconds(batch, max(CALLS // 100, 5)) / BATCH
        record_ratio(benchmark, "sequence_single_touch_over_vector_touch", single, vector)
