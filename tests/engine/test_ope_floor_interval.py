"""The doubly robust family's "floor" interval: formula, bounds, merging and coverage."""

import itertools

import numpy as np
import pytest

from engine import ope
from engine.ope.merge import describe_intervals
from engine.ope.reward_model import cross_fit_reward_moments, cross_fit_rewards
from engine.ope.synthetic import SyntheticWorld

DR_FAMILY = ["dr", "sndr", "switch-dr", "dr-os"]


def lottery_log(n: int, rng: np.random.Generator, p0: float = 0.03):
    """Rare purchases of log-normal value, the target's action logged with probability ``p0``.

    Returns the evaluate() arguments, the oracle mean and variance of every action's reward and
    the target's true value on these rows.
    """
    x = rng.random(n)
    p = 0.03 + 0.25 * x**2
    value = np.exp(rng.normal(3.5, 0.6, n))
    logged = np.column_stack([np.full(n, p0), np.full(n, (1 - p0) / 2), np.full(n, (1 - p0) / 2)])
    actions = (rng.random(n)[:, None] > np.cumsum(logged, axis=1)).sum(axis=1)
    lift = np.array([1.0, 0.5, 0.2])
    q = p[:, None] * lift * value[:, None]
    var = p[:, None] * lift * (1 - p[:, None] * lift) * value[:, None] ** 2
    rewards = (rng.random(n) < p * lift[actions]) * value
    target = np.zeros((n, 3))
    target[:, 0] = 1.0
    args = (rewards, actions, logged[np.arange(n), actions], target)
    return args, q, var, float(q[:, 0].mean())


@pytest.fixture(scope="module")
def log():
    return lottery_log(3_000, np.random.default_rng(4))


def test_floor_se_matches_the_formula(log):
    (r, a, mu, pi), q, var, _ = log
    # A model that is off (so that the floor does not vanish) and too-large variances.
    q_hat, v_hat = q * 0.8, var * 1.5
    table = ope.evaluate(
        r, a, mu, pi, estimated_rewards=q_hat, estimated_variances=v_hat, estimators=["dr"]
    )
    n = r.size
    w = pi[np.arange(n), a] / mu
    e = r - q_hat[np.arange(n), a]
    terms = q_hat[:, 0] + w * e
    s2 = terms.var(ddof=1)
    gap = np.sum(w**2 * (v_hat[np.arange(n), a] - e**2)) / (n - 1)
    assert gap > 0
    expected = np.sqrt((s2 + gap) / n)
    assert table.attrs["ci_methods"]["dr"] == "floor"
    np.testing.assert_allclose(table.loc["dr", "se"], expected, rtol=1e-10)
    half = (table.loc["dr", "ci_high"] - table.loc["dr", "ci_low"]) / 2
    np.testing.assert_allclose(half, 1.959963984540054 * expected, rtol=1e-10)


@pytest.mark.parametrize("scale", [0.0, 0.3, 1.0, 3.0, 30.0])
def test_floor_is_never_narrower_than_analytic(scale):
    rng = np.random.default_rng(int(scale * 10))
    (r, a, mu, pi), q, var, _ = lottery_log(2_000, rng)
    kw = {"estimated_rewards": q, "estimated_variances": scale * var, "estimators": DR_FAMILY}
    floor = ope.evaluate(r, a, mu, pi, ci="floor", **kw)
    normal = ope.evaluate(r, a, mu, pi, ci="analytic", **kw)
    assert (floor["se"] >= normal["se"]).all()
    assert (floor["ci_low"] <= normal["ci_low"]).all()
    assert (floor["ci_high"] >= normal["ci_high"]).all()
    np.testing.assert_array_equal(floor["value"], normal["value"])
    if scale >= 3.0:  # variances well above the residuals: the floor binds (Switch-DR drops
        # every weight above 20, here all of them, so it has no weighted residual to floor)
        binds = ["dr", "sndr", "dr-os"]
        assert (floor.loc[binds, "se"] > 1.01 * normal.loc[binds, "se"]).all()


def test_floor_equals_analytic_when_residuals_exceed_the_variances(log):
    (r, a, mu, pi), q, _, _ = log
    n = r.size
    residual2 = (r - q[np.arange(n), a]) ** 2
    # sigma^2 <= (r - q)^2 on every row (at the logged action; other actions do not count).
    v_hat = np.full_like(q, 1e6)
    v_hat[np.arange(n), a] = 0.5 * residual2
    kw = {"estimated_rewards": q, "estimated_variances": v_hat, "estimators": DR_FAMILY}
    floor = ope.evaluate(r, a, mu, pi, ci="floor", **kw)
    normal = ope.evaluate(r, a, mu, pi, ci="analytic", **kw)
    np.testing.assert_allclose(floor.to_numpy(float), normal.to_numpy(float), rtol=1e-14)
    assert all(floor.attrs["ci_methods"][e] == "floor" for e in DR_FAMILY)


def test_auto_resolves_to_floor_only_with_variances(log):
    (r, a, mu, pi), q, var, _ = log
    names = ["ipw", "snipw", "dm", "dr", "sndr", "switch-dr"]
    with_var = ope.evaluate(
        r, a, mu, pi, estimated_rewards=q, estimated_variances=var, estimators=names
    )
    assert with_var.attrs["ci_methods"] == {
        "ipw": "skew",
        "snipw": "skew",
        "dm": "none",
        "dr": "floor",
        "sndr": "floor",
        "switch-dr": "analytic",
        "on-policy": "analytic",
    }
    without = ope.evaluate(r, a, mu, pi, estimated_rewards=q, estimators=names)
    assert without.attrs["ci_methods"]["dr"] == "analytic"
    assert without.attrs["ci_methods"]["sndr"] == "analytic"
    assert without.attrs["ci_methods"]["dm"] == "none"
    floor_without = ope.evaluate(r, a, mu, pi, estimated_rewards=q, estimators=names, ci="floor")
    assert set(floor_without.attrs["ci_methods"].values()) == {"analytic"}
    printed = describe_intervals("auto", with_var.attrs["ci_methods"])
    assert "variance-floored normal for dr, sndr" in printed
    assert "floor" not in describe_intervals("auto", without.attrs["ci_methods"])


def test_contexts_give_the_floor_through_cross_fitted_moments():
    world = SyntheticWorld.make(n_actions=3, seed=5)
    data = world.sample(1_500, np.random.default_rng(6))
    args = (data.rewards, data.actions, data.logged_probs, data.target_probs)
    table = ope.evaluate(*args, contexts=data.contexts, seed=3)
    assert table.attrs["ci_methods"]["dr"] == "floor"
    q, v = cross_fit_reward_moments(
        data.contexts, data.actions, data.rewards, 3, np.random.default_rng(3)
    )
    same = ope.evaluate(*args, estimated_rewards=q, estimated_variances=v)
    np.testing.assert_allclose(table.to_numpy(float), same.to_numpy(float), rtol=1e-12)


BOUNDS = [0, 1, 2, 700, 701, 2_000, 3_000]


def chunks(args, q, var):
    r, a, mu, pi = args
    for lo, hi in itertools.pairwise(BOUNDS):
        yield {
            "rewards": r[lo:hi],
            "actions": a[lo:hi],
            "logged_probs": mu[lo:hi],
            "target_probs": pi[lo:hi],
            "estimated_rewards": q[lo:hi],
            "estimated_variances": var[lo:hi],
        }


@pytest.mark.parametrize("ci", ["floor", "auto"])
def test_merged_chunks_equal_the_whole(log, ci):
    args, q, var, _ = log
    q_hat, v_hat = 0.9 * q, 1.2 * var  # the floor binds for some estimators
    names = list(ope.ESTIMATORS)
    whole = ope.evaluate(
        *args, estimated_rewards=q_hat, estimated_variances=v_hat, estimators=names, ci=ci
    )
    streamed = ope.evaluate_stream(chunks(args, q_hat, v_hat), estimators=names, ci=ci)
    assert streamed.attrs["ci_methods"] == whole.attrs["ci_methods"]
    np.testing.assert_allclose(streamed.to_numpy(float), whole.to_numpy(float), rtol=1e-10)
    parts = [ope.summarize(**c, estimators=names) for c in chunks(args, q_hat, v_hat)]
    merged = ope.merge(parts)
    np.testing.assert_allclose(merged["dr"].variance_gap, whole_gap(args, q_hat, v_hat), rtol=1e-10)


def whole_gap(args, q, var):
    r, a, mu, pi = args
    rows = np.arange(r.size)
    w = pi[rows, a] / mu
    return float(np.sum(w**2 * (var[rows, a] - (r - q[rows, a]) ** 2)))


def test_summaries_with_and_without_variances_do_not_merge(log):
    (r, a, mu, pi), q, var, _ = log
    one = ope.summarize(
        r[:10], a[:10], mu[:10], pi[:10], q[:10], estimated_variances=var[:10], estimators=["dr"]
    )
    two = ope.summarize(r[10:20], a[10:20], mu[10:20], pi[10:20], q[10:20], estimators=["dr"])
    with pytest.raises(ValueError, match="with and without reward variances"):
        one + two


def test_estimated_variances_are_validated(log):
    (r, a, mu, pi), q, var, _ = log
    bad = var.copy()
    bad[7, 1] = -1.0
    with pytest.raises(ValueError, match=r"estimated_variances row 7 == .*must be >= 0"):
        ope.evaluate(r, a, mu, pi, estimated_rewards=q, estimated_variances=bad)
    with pytest.raises(ValueError, match="estimated_variances given without estimated_rewards"):
        ope.evaluate(r, a, mu, pi, estimated_variances=var)
    with pytest.raises(ValueError, match=r"estimated_variances has shape \(3000, 2\)"):
        ope.evaluate(r, a, mu, pi, estimated_rewards=q, estimated_variances=var[:, :2])


def test_reward_moments_share_the_mean_and_fit_the_variance():
    rng = np.random.default_rng(11)
    n = 6_000
    x = rng.random((n, 2))
    a = rng.integers(0, 2, n)
    value = 20.0 + 80.0 * x[:, 1]
    p = np.where(a == 1, 0.05 + 0.4 * x[:, 0], 0.1)
    r = (rng.random(n) < p) * value
    for model in ("ridge", "boosted"):
        kw = {"model": model, "scale": value}
        q1 = cross_fit_rewards(x, a, r, 2, np.random.default_rng(2), **kw)
        q2, v = cross_fit_reward_moments(x, a, r, 2, np.random.default_rng(2), **kw)
        np.testing.assert_array_equal(q1, q2)
        assert (v >= 0).all()
        logged = np.arange(n), a
        true_var = p * (1 - p) * value**2
        # The mean of the fitted variance at the logged actions is within 15% of the truth.
        assert abs(v[logged].mean() / true_var.mean() - 1) < 0.15, (model, v[logged].mean())
    binary = (rng.random(n) < p).astype(float)
    q, v = cross_fit_reward_moments(x, a, binary, 2, np.random.default_rng(2), model="logistic")
    np.testing.assert_allclose(v, q * (1 - q))


def test_floor_restores_coverage_of_a_purchase_lottery():
    """Fixed seed, 200 logs of 2,000 rows with about 9 heavily weighted purchases each.

    With the oracle mean and variance as the reward model, the normal interval misses low on
    logs with few purchases and the floored one covers at least nominally (it is conservative
    here; figures in docs/ope-engine-logs.md). The band is 95% - 3 binomial sd (200 logs) to 1.
    """
    rng = np.random.default_rng(0)
    reps = 200
    covered = {"analytic": np.zeros(2), "floor": np.zeros(2)}
    for _ in range(reps):
        args, q, var, truth = lottery_log(2_000, rng)
        for ci in covered:
            model = {"estimated_rewards": q, "estimated_variances": var}
            t = ope.evaluate(*args, **model, estimators=["dr", "sndr"], ci=ci)
            hit = (t["ci_low"] <= truth) & (truth <= t["ci_high"])
            covered[ci] += hit.loc[["dr", "sndr"]].to_numpy()
    normal, floor = covered["analytic"] / reps, covered["floor"] / reps
    low = 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)
    assert (floor >= low).all(), floor
    assert (floor > normal).all(), (floor, normal)
    assert (normal < 0.94).all(), normal  # the shortfall the floor is for
