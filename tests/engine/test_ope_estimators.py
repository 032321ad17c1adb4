"""Each estimator against a straightforward re-implementation of its textbook formula."""

import math

import numpy as np
import pytest

from engine import ope
from engine.ope.synthetic import SyntheticWorld

N_ROWS = 400


@pytest.fixture(scope="module")
def log():
    world = SyntheticWorld.make(n_actions=4, seed=7)
    data = world.sample(N_ROWS, np.random.default_rng(11))
    # A deliberately wrong reward model, so DM/DR/SNDR/... all differ.
    q_hat = np.clip(
        data.expected_rewards + 0.15 * np.sin(np.arange(4) + data.contexts[:, :1]), 0, 1
    )
    # Zero target mass on some logged actions exercises the zero-weight paths.
    target = data.target_probs.copy()
    target[:50] = 0.0
    target[np.arange(50), (data.actions[:50] + 1) % 4] = 1.0
    return data, q_hat, target


def reference_values(r, a, p, pi, q, tau, lam, mu):
    """Plain loops over rows: Dudik 2011, Swaminathan & Joachims 2015, Wang 2017, Su 2020.

    ``mu`` is the full logging distribution, used by Switch-DR as Wang et al. define it.
    """
    n, k = pi.shape
    ipw = snipw_num = snipw_den = dm = dr = sndr_res = switch = dros = 0.0
    for i in range(n):
        w = pi[i, a[i]] / p[i]
        d = sum(pi[i, b] * q[i, b] for b in range(k))
        res = r[i] - q[i, a[i]]
        ipw += w * r[i]
        snipw_num += w * r[i]
        snipw_den += w
        dm += d
        dr += d + w * res
        sndr_res += w * res
        # Switch-DR, literally: DR restricted to actions with weight <= tau, model elsewhere.
        model_part = sum(pi[i, b] * q[i, b] for b in range(k) if pi[i, b] / mu[i, b] > tau)
        dr_part = sum(pi[i, b] * q[i, b] for b in range(k) if pi[i, b] / mu[i, b] <= tau)
        switch += model_part + dr_part + (w * res if w <= tau else 0.0)
        dros += d + (lam * w / (w * w + lam)) * res
    return {
        "on-policy": sum(r) / n,
        "ipw": ipw / n,
        "snipw": snipw_num / snipw_den,
        "dm": dm / n,
        "dr": dr / n,
        "sndr": dm / n + sndr_res / snipw_den,
        "switch-dr": switch / n,
        "dr-os": dros / n,
    }


@pytest.mark.parametrize(
    "tau,lam", [(ope.DEFAULT_SWITCH_THRESHOLD, ope.DEFAULT_DROS_LAMBDA), (2.0, 3.0), (0.5, 1e6)]
)
def test_point_estimates_match_textbook_formulas(log, tau, lam):
    data, q_hat, target = log
    table = ope.evaluate(
        data.rewards,
        data.actions,
        data.logged_probs,
        target,
        estimated_rewards=q_hat,
        estimators=list(ope.ESTIMATORS),
        switch_threshold=tau,
        dros_lambda=lam,
    )
    expected = reference_values(
        data.rewards, data.actions, data.logged_probs, target, q_hat, tau, lam, data.logging_probs
    )
    for name, value in expected.items():
        np.testing.assert_allclose(table.loc[name, "value"], value, rtol=1e-12, err_msg=name)


def test_standard_errors_match_influence_functions(log):
    data, q_hat, target = log
    r, a, p = data.rewards, data.actions, data.logged_probs
    n = r.size
    rows = np.arange(n)
    w = target[rows, a] / p
    d = (target * q_hat).sum(axis=1)
    res = r - q_hat[rows, a]
    snipw = (w * r).sum() / w.sum()
    sndr_term = (w * res).sum() / w.sum()
    influence = {
        "on-policy": r,
        "ipw": w * r,
        "dm": d,
        "dr": d + w * res,
        "snipw": (w * r - snipw * w) / w.mean(),  # linearisation of a ratio of means
        "sndr": d + (w * res - sndr_term * w) / w.mean(),
    }
    table = ope.evaluate(
        r, a, p, target, estimated_rewards=q_hat, estimators=list(influence), ci="analytic"
    )
    z = 1.959963984540054
    for name, phi in influence.items():
        se = np.std(phi, ddof=1) / math.sqrt(n)
        np.testing.assert_allclose(table.loc[name, "se"], se, rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(
            table.loc[name, "ci_high"] - table.loc[name, "ci_low"],
            2 * z * se,
            rtol=1e-9,
            err_msg=name,
        )


def test_diagnostics(log):
    data, q_hat, target = log
    rows = np.arange(N_ROWS)
    w = target[rows, data.actions] / data.logged_probs
    table = ope.evaluate(
        data.rewards,
        data.actions,
        data.logged_probs,
        target,
        estimated_rewards=q_hat,
        estimators=["ipw", "dm", "switch-dr"],
        switch_threshold=3.0,
    )
    np.testing.assert_allclose(table.loc["ipw", "ess"], w.sum() ** 2 / (w**2).sum(), rtol=1e-12)
    assert table.loc["ipw", "max_weight"] == w.max()
    np.testing.assert_allclose(table.loc["ipw", "mean_weight"], w.mean(), rtol=1e-12)
    kept = np.where(w <= 3.0, w, 0.0)
    assert table.loc["switch-dr", "max_weight"] == kept.max()
    np.testing.assert_allclose(
        table.loc["switch-dr", "ess"], kept.sum() ** 2 / (kept**2).sum(), rtol=1e-12
    )
    zero_share = np.mean(target[rows, data.actions] == 0.0)
    assert zero_share >= 50 / N_ROWS
    assert (table["zero_target_share"] == zero_share).all()
    assert np.isnan(table.loc["dm", "ess"]) and np.isnan(table.loc["dm", "max_weight"])
    assert (table["n"] == N_ROWS).all()


def test_parameter_limits_reduce_to_dm_and_dr(log):
    data, q_hat, target = log
    args = (data.rewards, data.actions, data.logged_probs, target)
    names = ["dm", "dr", "switch-dr", "dr-os"]
    as_dr = ope.evaluate(
        *args,
        estimated_rewards=q_hat,
        estimators=names,
        switch_threshold=math.inf,
        dros_lambda=math.inf,
    )
    as_dm = ope.evaluate(
        *args, estimated_rewards=q_hat, estimators=names, switch_threshold=0.0, dros_lambda=0.0
    )
    for name in ("switch-dr", "dr-os"):
        np.testing.assert_allclose(as_dr.loc[name, "value"], as_dr.loc["dr", "value"], rtol=1e-12)
        np.testing.assert_allclose(as_dm.loc[name, "value"], as_dm.loc["dm", "value"], rtol=1e-12)


def test_default_estimators_depend_on_model_and_on_policy_is_always_there(log):
    data, q_hat, target = log
    args = (data.rewards, data.actions, data.logged_probs, target)
    assert list(ope.evaluate(*args).index) == ["ipw", "snipw", "on-policy"]
    with_model = ope.evaluate(*args, estimated_rewards=q_hat)
    assert list(with_model.index) == [*list(ope.DEFAULT_ESTIMATORS), "on-policy"]
    assert list(with_model.columns) == [
        "value",
        "ci_low",
        "ci_high",
        "se",
        "n",
        "ess",
        "max_weight",
        "mean_weight",
        "zero_target_share",
    ]
    np.testing.assert_allclose(
        with_model.loc["on-policy", "value"], data.rewards.mean(), rtol=1e-12
    )


def test_confidence_level_scales_interval(log):
    data, _, target = log
    args = (data.rewards, data.actions, data.logged_probs, target)
    t90 = ope.evaluate(*args, confidence=0.90, ci="analytic")
    t99 = ope.evaluate(*args, confidence=0.99, ci="analytic")
    width = lambda t: t.loc["ipw", "ci_high"] - t.loc["ipw", "ci_low"]  # noqa: E731
    np.testing.assert_allclose(
        width(t99) / width(t90), 2.5758293035489 / 1.6448536269514722, rtol=1e-10
    )


def test_snipw_is_nan_when_no_logged_action_has_target_mass():
    table = ope.evaluate([1.0, 0.0], [0, 0], [0.5, 0.5], [[0.0, 1.0], [0.0, 1.0]])
    assert table.loc["ipw", "value"] == 0.0
    assert np.isnan(table.loc["snipw", "value"])
    assert table.loc["ipw", "zero_target_share"] == 1.0
