"""Simulator speed as ratios to Gymnasium's own CartPole-v1 step, measured in the same run.

Goals (issue #2): one cart (reset + step) through ``gymnasium.make`` <= 5x a CartPole step; the
native vector env at batch 1024 >= 10x faster per cart than the single env.
"""

import gymnasium as gym
from bench_utils import LARGE, per_call_seconds, record_ratio
from env_bench import single_cart, vector_step

import simulator  # noqa: F401  (registers CartRecovery-v0)

CALLS = 20_000 if LARGE else 300
BATCH = 1024


def _cartpole_step():
    env = gym.make("CartPole-v1")
    env.reset(seed=0)

    def step():
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            env.reset()

    return step


def test_single_env_cart_vs_cartpole_step(benchmark):
    cartpole, cart = _cartpole_step(), single_cart()
    benchmark(cart)
    if not benchmark.disabled:
        reference = per_call_seconds(cartpole, CALLS)
        subject = per_call_seconds(cart, CALLS)
        record_ratio(benchmark, "single_cart_over_cartpole_step", subject, reference)


def test_vector_env_per_cart_vs_single_env(benchmark):
    cart, batch, cartpole = single_cart(), vector_step("CartRecovery-v0", BATCH), _cartpole_step()
    benchmark(batch)
    if not benchmark.disabled:
        single = per_call_seconds(cart, CALLS)
        per_cart = per_call_seconds(batch, max(CALLS // BATCH, 3)) / BATCH
        record_ratio(benchmark, "single_cart_over_vector_cart", single, per_cart)
        record_ratio(
            benchmark, "vector_cart_over_cartpole_step", per_cart, per_call_seconds(cartpole, CALLS)
        )
