"""Sample size and power: formula against statsmodels, and simulated power at the computed n."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from engine import abtest


def clustered_totals(rng, runs, users, effect=0.0):
    """Per-user profit totals and cart counts; per-user random effects, lognormal values.
    Treated users (second half) get +effect per cart, so the true difference is ``effect``."""
    n = rng.geometric(1 / 3, size=(runs, users))
    p_user = rng.beta(0.5, 3.0, size=(runs, users))
    mu_user = rng.normal(4.0, 0.6, size=(runs, users))
    owner = np.repeat(np.arange(runs * users), n.ravel())
    converted = rng.random(owner.size) < p_user.ravel()[owner]
    profit = (
        converted * 0.3 * np.exp(mu_user.ravel()[owner] + 0.8 * rng.standard_normal(owner.size))
        - 0.5
    )
    profit += effect * ((owner % users) >= users // 2)
    y = np.bincount(owner, weights=profit, minlength=runs * users).reshape(runs, users)
    return y, n.astype(float), owner, profit


@pytest.mark.parametrize("sd, mde, alpha, power", [(1.0, 0.1, 0.05, 0.8), (12.0, 0.5, 0.01, 0.9)])
def test_sample_size_matches_statsmodels(sd, mde, alpha, power):
    expected = NormalIndPower().solve_power(
        effect_size=mde / sd, alpha=alpha, power=power, ratio=1.0
    )
    n = abtest.sample_size(baseline_mean=3.0, baseline_sd=sd, mde=mde, alpha=alpha, power=power)
    assert n == int(np.ceil(expected))
    assert abtest.sample_size(3.0, sd, mde / 3.0, alpha, power, relative=True) == n
    assert abtest.achieved_power(n, sd, mde, alpha) == pytest.approx(power, abs=2e-3)


def test_simulated_power_at_computed_sample_size_is_80_percent():
    sd, mde = 2.0, 0.15
    n = abtest.sample_size(baseline_mean=5.0, baseline_sd=sd, mde=mde)
    runs = 4000
    rng = np.random.default_rng(17)
    y_c = rng.normal(5.0, sd, size=(runs, n))
    y_t = rng.normal(5.0 + mde, sd, size=(runs, n))
    ones = np.ones((runs, n))
    diff = abtest.ratio_difference(y_t, ones, y_c, ones)
    power = np.mean(2 * stats.norm.sf(np.abs(diff.abs_effect / diff.abs_se)) < 0.05)
    # 4000 runs: binomial SE 0.63 points; tolerance +-2.5 points.
    assert power == pytest.approx(0.80, abs=0.025)


def test_pilot_sd_is_the_delta_method_per_user_sd():
    y, n, owner, profit = clustered_totals(np.random.default_rng(18), 1, 20000)
    pilot = pd.DataFrame({"user_id": owner, "profit": profit})
    mean, sd = abtest.pilot_sd(pilot, "profit")
    ratio, var = abtest.ratio_mean_var(y[0], n[0])
    assert mean == pytest.approx(float(ratio), rel=1e-12)
    assert sd == pytest.approx(np.sqrt(float(var) * y.shape[1]), rel=1e-9)


def test_simulated_power_from_clustered_pilot_is_80_percent():
    # A large pilot: with heavy-tailed profit, a small pilot tends to underestimate the sd.
    y, n, owner, profit = clustered_totals(np.random.default_rng(19), 1, 100000)
    pilot = pd.DataFrame({"user_id": owner, "profit": profit})
    mde = 0.6  # per-cart profit is ~2.6 with a per-user linearised sd of ~10
    per_arm = abtest.sample_size_from_pilot(pilot, "profit", mde)
    assert 4000 < per_arm < 7000
    runs = 500
    y, n, *_ = clustered_totals(np.random.default_rng(20), runs, 2 * per_arm, effect=mde)
    diff = abtest.ratio_difference(y[:, per_arm:], n[:, per_arm:], y[:, :per_arm], n[:, :per_arm])
    power = np.mean(2 * stats.norm.sf(np.abs(diff.abs_effect / diff.abs_se)) < 0.05)
    # 500 runs: binomial SE 1.8 points; tolerance +-5 points (also absorbs pilot sd error).
    assert power == pytest.approx(0.80, abs=0.05)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"baseline_sd": 0.0}, "baseline_sd == 0.0"),
        ({"mde": 0.0}, "mde == 0"),
        ({"alpha": 0.0}, "alpha == 0.0"),
        ({"power": 1.2}, "power == 1.2"),
        ({"baseline_mean": 0.0, "relative": True}, "baseline_mean == 0"),
    ],
)
def test_sample_size_bad_input(kwargs, message):
    args = {"baseline_mean": 1.0, "baseline_sd": 1.0, "mde": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        abtest.sample_size(**args)
