"""Benchmarks of the A/B analysis, reported as ratios to a plain pandas per-user aggregation.

Size: 20,000 carts by default, 200,000 with ``CARTWISE_BENCH_SCALE=large``. The reference is
the least work any correct analysis does: one groupby-sum of the metrics by user. Ratios go to
``benchmark.extra_info``; the targets are checked only at the large scale with benchmarking
enabled (on small data fixed per-call overheads dominate the tiny reference).
"""

import numpy as np
import pandas as pd
import pytest
from bench_utils import LARGE, per_call_seconds, record_ratio

from engine import abtest

USERS = 70_000 if LARGE else 7_000
METRICS = ["profit", "converted", "revenue", "coupon_cost"]
# compare() may cost at most this many reference groupby-sums (measured at the large scale:
# about 1.7x plain, 3.8x with CUPED, 5x with 14 daily looks of confidence sequences).
TARGETS = {"plain": 4.0, "cuped": 8.0, "sequential": 12.0}
MODES = {
    "plain": {},
    "cuped": {"covariates": "pre_profit"},
    "sequential": {"sequential": True, "look": "day"},
}


@pytest.fixture(scope="module")
def carts():
    rng = np.random.default_rng(0)
    n = rng.geometric(1 / 3, USERS)
    owner = np.repeat(np.arange(USERS), n)
    converted = rng.random(owner.size) < 0.15
    revenue = converted * rng.lognormal(4.0, 0.8, owner.size)
    arm = np.array(["control", "B", "C"])[rng.integers(0, 3, USERS)][owner]
    coupon = revenue * 0.1 * (arm != "control")
    return pd.DataFrame(
        {
            "user_id": [f"u{i:07d}" for i in owner],
            "arm": arm,
            "day": rng.integers(0, 14, owner.size),
            "converted": converted,
            "revenue": revenue,
            "coupon_cost": coupon,
            "profit": 0.3 * revenue - coupon - 0.5,
            "pre_profit": rng.normal(size=USERS)[owner],
        }
    )


@pytest.mark.parametrize("mode", list(MODES))
def test_bench_compare(benchmark, carts, mode):
    kwargs = MODES[mode]
    table = benchmark(abtest.compare, carts, metrics=METRICS, **kwargs)
    assert len(table) == 2 * len(METRICS)
    subject = per_call_seconds(lambda: abtest.compare(carts, metrics=METRICS, **kwargs), calls=1)
    reference = per_call_seconds(lambda: carts.groupby("user_id")[METRICS].sum(), calls=1)
    ratio = record_ratio(benchmark, "compare_vs_groupby_sum", subject, reference)
    benchmark.extra_info.update({"carts": len(carts), "target_ratio": TARGETS[mode]})
    if LARGE and not benchmark.disabled:
        assert ratio <= TARGETS[mode], f"{mode}: compare is {ratio:.1f}x the groupby-sum reference"
