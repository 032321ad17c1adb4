"""engine.ope.reward_model: the boosted (pooled, action-interacted) model and the reward scale."""

import numpy as np
import pytest

from engine.ope.reward_model import cross_fit_rewards


def profit_world(n: int, seed: int):
    """Profit-like rewards: value x (buy probability, a nonlinear function of x and a) - cost."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    value = np.exp(1.0 + 0.8 * x[:, 0])
    lift = np.array([0.0, 0.15, 0.3])
    p = 1.0 / (1.0 + np.exp(-(np.sign(x[:, 1:2]) + lift[None, :] * (x[:, 2:3] > 0) - 1.0)))
    q = value[:, None] * (p * (0.3 - np.array([0.0, 0.05, 0.1]))) - 0.25 * (np.arange(3) > 0)
    a = rng.integers(3, size=n)
    r = np.where(
        rng.random(n) < p[np.arange(n), a], value * (0.3 - np.array([0.0, 0.05, 0.1])[a]), 0.0
    )
    r -= 0.25 * (a > 0)
    return x, a, r, q, value


def test_boosted_with_scale_fits_a_nonlinear_profit_better_than_ridge() -> None:
    x, a, r, q, value = profit_world(6_000, 0)
    ridge = cross_fit_rewards(x, a, r, 3, np.random.default_rng(1), model="ridge")
    boosted = cross_fit_rewards(x, a, r, 3, np.random.default_rng(1), model="boosted", scale=value)

    def rmse(m):
        return float(np.sqrt(np.mean((m - q) ** 2)))

    assert rmse(boosted) < 0.6 * rmse(ridge), (rmse(boosted), rmse(ridge))
    # every action's mean prediction is within 3 standard errors of that action's mean logged
    # reward of its true mean (no systematic bias)
    se = np.array([r[a == j].std(ddof=1) / np.sqrt(np.count_nonzero(a == j)) for j in range(3)])
    assert (np.abs(boosted.mean(axis=0) - q.mean(axis=0)) < 3 * se).all()


def test_boosted_is_deterministic_for_a_seed_and_out_of_fold() -> None:
    x, a, r, _, value = profit_world(600, 2)
    one = cross_fit_rewards(x, a, r, 3, np.random.default_rng(5), model="boosted", scale=value)
    two = cross_fit_rewards(x, a, r, 3, np.random.default_rng(5), model="boosted", scale=value)
    np.testing.assert_array_equal(one, two)
    # a row's predictions do not depend on its own reward
    r2 = r.copy()
    r2[0] += 1_000.0
    three = cross_fit_rewards(x, a, r2, 3, np.random.default_rng(5), model="boosted", scale=value)
    np.testing.assert_array_equal(one[0], three[0])


def test_scale_multiplies_back_and_is_validated() -> None:
    x, a, r, _, _ = profit_world(300, 3)
    plain = cross_fit_rewards(x, a, r, 3, np.random.default_rng(0), model="ridge")
    doubled = cross_fit_rewards(
        x, a, 2 * r, 3, np.random.default_rng(0), model="ridge", scale=np.full(300, 2.0)
    )
    np.testing.assert_allclose(doubled, 2 * plain, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match=r"scale has shape \(2,\)"):
        cross_fit_rewards(x, a, r, 3, np.random.default_rng(0), scale=np.ones(2))
    with pytest.raises(ValueError, match="finite numbers > 0"):
        cross_fit_rewards(x, a, r, 3, np.random.default_rng(0), scale=np.zeros(300))
    with pytest.raises(ValueError, match="reward_model == 'boost'"):
        cross_fit_rewards(x, a, r, 3, np.random.default_rng(0), model="boost")
