"""Delta-method effects for per-cart metrics randomised by user: exactness, A/A, coverage."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from engine import abtest

# Synthetic clustered carts: conversion probability and order value are per-user random
# effects, carts per user are 1 + geometric, order values lognormal (heavy-ish tail).
P_A, P_B = 0.5, 3.0  # conversion probability ~ Beta(P_A, P_B)
LOG_MU, LOG_TAU, LOG_SIGMA = 4.0, 0.6, 0.8  # log value = N(LOG_MU, LOG_TAU) + N(0, LOG_SIGMA)
MARGIN, CONTACT = 0.3, 0.5
# Users are independent of their cart counts, so the per-cart ratio equals E[profit per cart].
TRUE_PROFIT_PER_CART = (
    P_A / (P_A + P_B) * MARGIN * np.exp(LOG_MU + LOG_TAU**2 / 2 + LOG_SIGMA**2 / 2) - CONTACT
)


def clustered_experiments(rng, runs, users, lift=0.0):
    """Per-user totals (runs, users) plus cart-level arrays; the second half of users is treated.

    Treated carts' profit is multiplied by ``1 + lift``, so the true relative effect is
    ``lift`` and the true absolute effect ``lift * TRUE_PROFIT_PER_CART``.
    """
    n = rng.geometric(1 / 3, size=(runs, users))  # 1 + geometric: mean 3 carts
    p_user = rng.beta(P_A, P_B, size=(runs, users))
    mu_user = rng.normal(LOG_MU, LOG_TAU, size=(runs, users))
    owner = np.repeat(np.arange(runs * users), n.ravel())
    converted = rng.random(owner.size) < p_user.ravel()[owner]
    value = np.exp(mu_user.ravel()[owner] + LOG_SIGMA * rng.standard_normal(owner.size))
    profit = converted * MARGIN * value - CONTACT
    treated = (owner % users) >= users // 2
    profit = np.where(treated, profit * (1 + lift), profit)
    y = np.bincount(owner, weights=profit, minlength=runs * users).reshape(runs, users)
    return y, n.astype(float), owner, profit, treated


def split(y, n):
    h = y.shape[-1] // 2
    return y[..., h:], n[..., h:], y[..., :h], n[..., :h]


def naive_cart_level_p(owner, profit, treated, runs, users):
    """Welch z-test on carts as if they were independent (the foil)."""
    group = (owner // users) * 2 + treated
    cnt = np.bincount(group, minlength=2 * runs).reshape(runs, 2)
    s1 = np.bincount(group, weights=profit, minlength=2 * runs).reshape(runs, 2)
    s2 = np.bincount(group, weights=profit**2, minlength=2 * runs).reshape(runs, 2)
    mean = s1 / cnt
    var = (s2 - cnt * mean**2) / (cnt - 1)
    z = (mean[:, 1] - mean[:, 0]) / np.sqrt((var / cnt).sum(axis=1))
    return 2 * stats.norm.sf(np.abs(z))


def test_ratio_variance_equals_direct_formula_on_user_sums():
    rng = np.random.default_rng(11)
    y, n, *_ = clustered_experiments(rng, runs=1, users=3000)
    y, n = y[0], n[0]
    ratio, var = abtest.ratio_mean_var(y, n)
    # Independent textbook formula: Var(Ybar/Nbar) ~ (s_yy - 2 R s_yn + R^2 s_nn) / (m Nbar^2).
    cov = np.cov(np.vstack([y, n]), ddof=1)
    r = y.mean() / n.mean()
    direct = (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (y.size * n.mean() ** 2)
    assert ratio == pytest.approx(r, rel=1e-12)
    assert var == pytest.approx(direct, rel=1e-9)


def test_relative_effect_se_equals_direct_gradient_formula():
    rng = np.random.default_rng(12)
    y, n, *_ = clustered_experiments(rng, runs=1, users=4000, lift=0.1)
    y_t, n_t, y_c, n_c = split(y[0], n[0])
    diff = abtest.ratio_difference(y_t, n_t, y_c, n_c)

    def ratio_and_var(y, n):  # Var(R) = var(y - R n) / (m * mean(n)^2), written out directly
        r = y.sum() / n.sum()
        return r, np.var(y - r * n, ddof=1) / (y.size * n.mean() ** 2)

    (r_t, v_t), (r_c, v_c) = ratio_and_var(y_t, n_t), ratio_and_var(y_c, n_c)
    assert diff.abs_effect == pytest.approx(r_t - r_c, rel=1e-12)
    assert diff.abs_se == pytest.approx(np.sqrt(v_t + v_c), rel=1e-9)
    assert diff.rel_effect == pytest.approx(r_t / r_c - 1, rel=1e-12)
    assert diff.rel_se == pytest.approx(np.sqrt(v_t / r_c**2 + r_t**2 * v_c / r_c**4), rel=1e-9)


def test_one_cart_per_user_equals_welch_z_and_t_tests():
    rng = np.random.default_rng(13)
    users = np.arange(2400)
    arm = np.where(users < 1000, "control", "treatment")  # unequal arms, unequal variances
    profit = np.where(
        arm == "control", rng.exponential(2.0, 2400), rng.exponential(2.6, 2400) - 0.3
    )
    df = pd.DataFrame({"user_id": users, "arm": arm, "profit": profit})
    plan = {"control": 1000 / 2400, "treatment": 1400 / 2400}
    row = abtest.compare(df, metrics=["profit"], control="control", expected=plan).iloc[0]
    x_t, x_c = profit[arm == "treatment"], profit[arm == "control"]
    cm = CompareMeans(DescrStatsW(x_t), DescrStatsW(x_c))
    _, p_z = cm.ztest_ind(usevar="unequal")
    low_z, high_z = cm.zconfint_diff(alpha=0.05, usevar="unequal")
    # The delta method with one cart per user IS the unequal-variance z-test: exact match.
    assert row["p_value"] == pytest.approx(p_z, rel=1e-9)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low_z, high_z), rel=1e-9)
    # Welch's t-test differs only by t vs normal quantiles (1.9612 vs 1.9600 here):
    # p-values within 1e-3, interval widths within 0.1%.
    welch = stats.ttest_ind(x_t, x_c, equal_var=False)
    assert row["p_value"] == pytest.approx(welch.pvalue, abs=1e-3)
    ci = welch.confidence_interval(0.95)
    assert row["ci_high"] - row["ci_low"] == pytest.approx(ci.high - ci.low, rel=1e-3)
    assert row["abs_effect"] == pytest.approx(x_t.mean() - x_c.mean(), rel=1e-12)


def test_compare_matches_array_core_on_cart_rows():
    rng = np.random.default_rng(14)
    runs, users = 1, 2000
    y, n, owner, profit, treated = clustered_experiments(rng, runs, users, lift=0.05)
    df = pd.DataFrame({"user_id": owner, "arm": np.where(treated, "B", "A"), "profit": profit})
    row = abtest.compare(df, control="A", metrics="profit").iloc[0]
    diff = abtest.ratio_difference(*split(y[0], n[0]))
    assert row["n_units"] == users // 2 and row["n_units_control"] == users // 2
    assert row["abs_effect"] == pytest.approx(float(diff.abs_effect), rel=1e-10)
    assert row["ci_high"] - row["ci_low"] == pytest.approx(
        2 * 1.959964 * float(diff.abs_se), rel=1e-6
    )
    assert row["rel_effect"] == pytest.approx(float(diff.rel_effect), rel=1e-10)
    assert row["control_mean"] == pytest.approx(
        profit[~treated].sum() / (~treated).sum(), rel=1e-10
    )


def test_aa_false_positive_rate_is_nominal_while_cart_level_test_is_not():
    runs, users = 1000, 1000
    rng = np.random.default_rng(2024)
    y, n, owner, profit, treated = clustered_experiments(rng, runs, users)
    diff = abtest.ratio_difference(*split(y, n))
    p = 2 * stats.norm.sf(np.abs(diff.abs_effect / diff.abs_se))
    fpr = np.mean(p < 0.05)
    naive_fpr = np.mean(naive_cart_level_p(owner, profit, treated, runs, users) < 0.05)
    # 1000 runs: binomial SE at 5% is 0.7 points, so [3%, 7%] is about +-2.9 SE.
    assert 0.03 <= fpr <= 0.07, fpr
    assert naive_fpr > 0.07, naive_fpr


def test_coverage_of_known_absolute_and_relative_effect():
    runs, users, lift = 1000, 2000, 0.08
    rng = np.random.default_rng(7)
    y, n, *_ = clustered_experiments(rng, runs, users, lift=lift)
    diff = abtest.ratio_difference(*split(y, n))
    z = stats.norm.ppf(0.975)
    true_abs = lift * TRUE_PROFIT_PER_CART
    cover_abs = np.mean(np.abs(diff.abs_effect - true_abs) <= z * diff.abs_se)
    cover_rel = np.mean(np.abs(diff.rel_effect - lift) <= z * diff.rel_se)
    # Nominal 95%; tolerance +-3 points (about 4 binomial SE with 1000 runs).
    assert 0.92 <= cover_abs <= 0.98, cover_abs
    assert 0.92 <= cover_rel <= 0.98, cover_rel
    # The estimates are centred on the truth (bias below a tenth of an SE).
    assert abs(np.mean(diff.abs_effect) - true_abs) < 0.1 * np.mean(diff.abs_se)
