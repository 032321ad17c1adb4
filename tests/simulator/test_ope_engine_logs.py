"""Off-policy evaluation on the engine's own decision logs (simulator.job.ope_coverage).

Each seed runs the quick ``cartwise run`` configuration (warm-up, the embedded engine learning
online with its exploration floor, 4,000 carts) and the job's OPE section with its default
intervals (``ci="auto"``: Hall's skewness-corrected interval for IPW and SNIPW, the
variance-floored normal one for DR and SNDR), whose truth is each target's expected profit on
exactly the logged carts. The full version (120 seeds x 4,000 carts) is
``tests/benchmarks/test_bench_ope_engine_coverage.py``.

Design: 12 seeds x 4,000 carts x 4 targets = 48 intervals per estimator (about 50 s of compute).
Their coverage has binomial sd sqrt(0.95 * 0.05 / 48) = 3.1 points, times a design effect of
DESIGN_EFFECT on the sd (the four targets of one log share its heavily weighted rows; measured
below), and the band is 95% +- 3 of those sd.

Measured before the variance floor (DR and SNDR with the normal interval) over seeds 0-59 in
five disjoint blocks of 12 (each block is one possible version of this test; the band is
0.827-1); the floor only widens DR's and SNDR's intervals (docs/ope-engine-logs.md):

- this design (4,000 carts), the engine as it is (VW ``--noconstant``): IPW 0.979 / 0.917 /
  1.000 / 0.979 / 0.854, SNIPW 0.917 / 0.896 / 1.000 / 0.979 / 0.833, DR and SNDR 0.917 / 0.854 /
  0.958 / 0.958 / 0.833; with VW's constant on: IPW 0.917-0.979, SNIPW 0.854-0.958, DR and SNDR
  0.854-0.938 per block. On seeds 1000-1119 (ten blocks, constant on) one block fails: seeds
  1084-1095, SNDR 0.812 (DR 0.833). DR's normal interval covers about 92% on these logs, not 95%
  (docs/ope-engine-logs.md), so a change to the engine can still move this test across the edge
  with a few per cent chance; the floor (now the default for DR and SNDR) addresses that
  shortfall.
- the old design (1,500 carts, VW constant on): IPW 0.958 / 0.875 / 0.938 / 0.917 / 0.917,
  SNIPW 0.917 / 0.875 / 0.938 / 0.917 / 0.875, DR 0.938 / 0.854 / 0.792 / 0.917 / 0.833, SNDR
  0.938 / 0.854 / 0.771 / 0.917 / 0.812: at 1,500 carts DR misses low (12.9% of intervals below
  the truth), so two blocks of five fail whatever the interval of IPW; with normal intervals
  IPW covered 0.825 over the 60 seeds.

The design effect (sd inflation from the four targets of one log sharing its weighted rows) is
measured as sd(per-seed coverage over the 4 targets) / binomial sd: 1.01-1.40 per estimator and
seed set at 4,000 carts, 1.22 pooled.

The boosted reward model's DM error is held below 0.6x the ridge model's (measured 0.26-0.30x
over 60-120 seeds of 4,000 carts, docs/ope-engine-logs.md; on 12 seeds the ratio is noisier).
"""

import logging

import numpy as np
import pytest

from simulator.job.ope_coverage import (
    binomial_band,
    coverage_config,
    coverage_summary,
    coverage_table,
)

SEEDS = range(12)
CARTS = 4_000
INTERVALS = ("ipw", "snipw", "dr", "sndr")
DESIGN_EFFECT = 1.3


@pytest.fixture(scope="module")
def table():
    logging.disable(logging.WARNING)  # the diagnostics warn on small logs; that is not under test
    try:
        return coverage_table(SEEDS, coverage_config(CARTS), reward_models=("boosted", "auto"))
    finally:
        logging.disable(logging.NOTSET)


def test_intervals_cover_the_truth_on_engine_logs(table) -> None:
    assert (table["ci"] == "auto").all()  # the job's default intervals
    boosted = table[table["reward_model"] == "boosted"]
    low, high = binomial_band(len(SEEDS) * 4, design_effect=DESIGN_EFFECT)
    coverage = boosted.groupby("estimator")["covered"].mean()
    for est in INTERVALS:
        assert low <= coverage[est] <= high, (est, float(coverage[est]), (low, high))


def test_truth_is_on_the_logged_carts_and_shared_by_estimators(table) -> None:
    per = table.groupby(["seed", "target"])["true_value"].nunique()
    assert (per == 1).all()
    # IPW is unbiased for this truth: the mean error over seeds is within 3 of its standard errors.
    ipw = table[(table["estimator"] == "ipw") & (table["reward_model"] == "boosted")]
    assert abs(ipw["error"].mean()) <= 3 * ipw["error"].std(ddof=1) / np.sqrt(len(ipw))


def test_boosted_reward_model_beats_ridge_for_dm(table) -> None:
    summary = coverage_summary(table[table["estimator"] == "dm"])
    err = summary["abs_error"].groupby(level="reward_model").mean()
    assert err["boosted"] <= 0.6 * err["auto"], err.to_dict()


def test_table_carries_weight_diagnostics(table) -> None:
    assert {"ess", "max_weight", "rare_share", "warning"} <= set(table.columns)
    assert (table["ess"] > 0).all() and (table["max_weight"] >= 1).all()
