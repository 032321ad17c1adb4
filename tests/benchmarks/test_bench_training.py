"""Training-loop throughput: carts per second of ``run_policy`` per policy, as a ratio to the raw
vector env stepping the same number of carts alone (same run, same machine).

The ratio ``loop_over_raw`` (loop seconds / raw env seconds) is what the loop costs on top of
the simulation: context records, features, the policy and the truth-based shadow baselines.
Default sizes are small (CI runs this with ``--benchmark-disable``); ``CARTWISE_BENCH_SCALE=large``
runs 100k carts (30k for VW, which is bounded by one VW call per example).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from bench_utils import LARGE

from policies import make_policy
from simulator import CartRecoveryVectorEnv
from simulator.training import run_policy

BATCH = 256
CARTS = (
    {"none": 100_000, "rule": 100_000, "linucb": 100_000, "lints": 100_000, "vw": 30_000}
    if LARGE
    else {"none": 2_000, "rule": 2_000, "linucb": 2_000, "lints": 2_000, "vw": 1_000}
)


def _raw_env_seconds(carts: int, seed: int) -> float:
    """Seconds to step the native vector env over ``carts`` carts with uniform random actions
    (after ``reset``, which builds the shop; ``run_policy`` times its loop the same way)."""
    env = CartRecoveryVectorEnv(num_envs=BATCH)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(-(-carts // BATCH)):
        env.step(rng.integers(0, 7, BATCH))
    return time.perf_counter() - start


@pytest.mark.parametrize("name", list(CARTS))
def test_bench_training_loop_vs_raw_env(benchmark, name):
    carts = CARTS[name]
    raw = min(_raw_env_seconds(carts, seed) for seed in (0, 1))
    results = []

    def run():
        results.append(
            run_policy(make_policy(name, seed=0), carts, seed=0, batch=BATCH, progress=False)
        )

    benchmark.pedantic(run, rounds=1, iterations=1)
    result = results[-1]
    ratio = result.seconds / raw
    benchmark.extra_info.update(
        policy=name,
        carts=carts,
        loop_carts_per_second=round(result.carts_per_second),
        raw_env_carts_per_second=round(carts / raw),
        loop_over_raw=round(ratio, 2),
        gain_share=round(result.gain_share, 3),
    )
    assert result.carts == carts and result.value_last <= result.oracle + 1e-12
