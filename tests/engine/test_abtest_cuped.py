"""CUPED for ratio metrics: unbiased, variance reduced by about rho^2, correct coverage."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engine import abtest

# Per user: n carts (1 + geometric, mean 3), user level u ~ N(MU, TAU^2), each cart's profit
# u + N(0, SIGMA_E^2), pre-period covariate x = u + N(0, SIGMA_X^2).
MU, TAU, SIGMA_E, SIGMA_X = 5.0, 2.0, 2.0, 1.0
E_N, E_N2 = 3.0, 15.0  # mean and second moment of 1 + Geometric(p=1/3) failures
# Linearised metric L = (Y - mu n) / E[n] = (n (u - mu) + sum e) / E[n], so
# Cov(L, x) = TAU^2, Var(L) = (E[n^2] TAU^2 + E[n] SIGMA_E^2) / E[n]^2, Var(x) = TAU^2 + SIGMA_X^2.
VAR_L = (E_N2 * TAU**2 + E_N * SIGMA_E**2) / E_N**2
RHO2 = TAU**4 / (VAR_L * (TAU**2 + SIGMA_X**2))  # = 0.4


def users_with_covariate(rng, runs, users, effect=0.0):
    """Per-user totals (runs, users); the second half is treated with +effect per cart."""
    n = rng.geometric(1 / 3, size=(runs, users)).astype(float)
    u = rng.normal(MU, TAU, size=(runs, users))
    # The sum of n i.i.d. normal cart noises is N(0, n SIGMA_E^2).
    y = n * u + np.sqrt(n) * SIGMA_E * rng.standard_normal((runs, users))
    y[:, users // 2 :] += effect * n[:, users // 2 :]
    x = u + SIGMA_X * rng.standard_normal((runs, users))
    h = users // 2
    return (y[:, h:], n[:, h:], x[:, h:]), (y[:, :h], n[:, :h], x[:, :h])


def test_cuped_unbiased_and_reduces_variance_by_rho_squared():
    runs, users, effect = 800, 2000, 0.3
    treat, ctrl = users_with_covariate(np.random.default_rng(5), runs, users, effect)
    plain = abtest.ratio_difference(treat[0], treat[1], ctrl[0], ctrl[1])
    cuped = abtest.cuped_difference(*treat, *ctrl)
    # Unbiased: both estimators centre on the true effect, and on each other (3 MC SE).
    mc_se = cuped.abs_effect.std() / np.sqrt(runs)
    assert abs(cuped.abs_effect.mean() - effect) < 3 * mc_se
    diff = cuped.abs_effect - plain.abs_effect
    assert abs(diff.mean()) < 3 * diff.std() / np.sqrt(runs)
    # Reported reduction matches the known rho^2 = 0.4 (+-0.03 on the mean over runs,
    # +-0.08 for every single run of 2000 users).
    assert cuped.variance_reduction.mean() == pytest.approx(RHO2, abs=0.03)
    assert np.all(np.abs(cuped.variance_reduction - RHO2) < 0.08)
    # Achieved: Monte Carlo variance ratio ~ 1 - rho^2 (+-0.07, about 3 MC SE at 800 runs).
    assert cuped.abs_effect.var() / plain.abs_effect.var() == pytest.approx(1 - RHO2, abs=0.07)
    # And the CUPED interval still covers at ~95% (+-3 points).
    z = stats.norm.ppf(0.975)
    cover = np.mean(np.abs(cuped.abs_effect - effect) <= z * cuped.abs_se)
    assert 0.92 <= cover <= 0.98, cover


def test_uncorrelated_covariate_gives_no_reduction_and_no_harm():
    rng = np.random.default_rng(8)
    treat, ctrl = users_with_covariate(rng, 300, 2000)
    noise_t = rng.standard_normal(treat[2].shape)
    noise_c = rng.standard_normal(ctrl[2].shape)
    cuped = abtest.cuped_difference(treat[0], treat[1], noise_t, ctrl[0], ctrl[1], noise_c)
    assert cuped.variance_reduction.mean() == pytest.approx(0.0, abs=0.01)


def test_pooled_theta_equals_least_squares_on_linearised_metric():
    rng = np.random.default_rng(9)
    (y_t, n_t, x_t), (y_c, n_c, x_c) = users_with_covariate(rng, 1, 3000, effect=0.2)
    extra_t, extra_c = rng.standard_normal(x_t.shape), rng.standard_normal(x_c.shape)
    two_t = np.stack([x_t[0], extra_t[0]], axis=-1)
    two_c = np.stack([x_c[0], extra_c[0]], axis=-1)
    result = abtest.cuped_difference(y_t[0], n_t[0], two_t, y_c[0], n_c[0], two_c)

    # Independent computation: OLS of the within-arm linearised metric on within-arm centred
    # covariates, stacking both arms (pooled theta), via numpy lstsq.
    def lin(y, n):
        return (y - y.sum() / n.sum() * n) / n.mean()

    design = np.vstack([two_t - two_t.mean(0), two_c - two_c.mean(0)])
    target = np.concatenate([lin(y_t[0], n_t[0]), lin(y_c[0], n_c[0])])
    theta, *_ = np.linalg.lstsq(design, target, rcond=None)
    assert result.theta == pytest.approx(theta, rel=1e-9)
    shift = (two_t.mean(0) - two_c.mean(0)) @ theta
    plain = y_t.sum() / n_t.sum() - y_c.sum() / n_c.sum()
    assert float(result.abs_effect) == pytest.approx(plain - shift, rel=1e-9)
    resid_t = lin(y_t[0], n_t[0]) - (two_t - two_t.mean(0)) @ theta
    resid_c = lin(y_c[0], n_c[0]) - (two_c - two_c.mean(0)) @ theta
    se = np.sqrt(resid_t.var(ddof=1) / resid_t.size + resid_c.var(ddof=1) / resid_c.size)
    assert float(result.abs_se) == pytest.approx(se, rel=1e-9)


def test_compare_reports_cuped_columns_from_cart_rows():
    rng = np.random.default_rng(10)
    (y_t, n_t, x_t), (y_c, n_c, x_c) = users_with_covariate(rng, 1, 4000, effect=0.3)
    # Spread each user's total over its carts (equal shares): the per-user sums are unchanged.
    y = np.concatenate([y_c[0], y_t[0]])
    n = np.concatenate([n_c[0], n_t[0]]).astype(int)
    x = np.concatenate([x_c[0], x_t[0]])
    owner = np.repeat(np.arange(y.size), n)
    df = pd.DataFrame(
        {
            "user_id": owner,
            "arm": np.where(owner >= y_c.shape[1], "new", "old"),
            "profit": (y / n)[owner],
            "pre_profit": x[owner],
        }
    )
    table = abtest.compare(df, control="old", metrics=["profit"], covariates="pre_profit")
    row = table.iloc[0]
    core = abtest.cuped_difference(y_t[0], n_t[0], x_t[0], y_c[0], n_c[0], x_c[0])
    assert row["cuped_abs_effect"] == pytest.approx(float(core.abs_effect), rel=1e-9)
    assert row["variance_reduction"] == pytest.approx(float(core.variance_reduction), rel=1e-9)
    assert row["variance_reduction"] == pytest.approx(RHO2, abs=0.06)
    width_plain = row["ci_high"] - row["ci_low"]
    width_cuped = row["cuped_ci_high"] - row["cuped_ci_low"]
    assert width_cuped / width_plain == pytest.approx(
        np.sqrt(1 - row["variance_reduction"]), rel=1e-9
    )
    assert row["p_value_holm"] == pytest.approx(row["cuped_p_value"])  # one row: Holm = raw


def test_covariate_varying_within_a_user_is_rejected():
    df = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 3, 4],
            "arm": ["a", "a", "b", "a", "b"],
            "profit": [1.0, 2.0, 3.0, 4.0, 5.0],
            "pre": [0.5, 0.7, 1.0, 2.0, 3.0],
        }
    )
    with pytest.raises(ValueError, match=r"'pre'.*constant per unit"):
        abtest.compare(df, control="a", metrics="profit", covariates="pre")
