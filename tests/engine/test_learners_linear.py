"""LinUCB and linear Thompson sampling checked against independent closed-form computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from engine.learners import LinTSLearner, LinUCBLearner

ACTIONS = ("none", "coupon_5", "coupon_10", "recall_message")
FEATURES = ("a", "b", "c")
N_A, N_D = len(ACTIONS), len(FEATURES)


def _data(seed: int, n: int, noise: float = 0.5):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(N_A, N_D + 1))  # last column: intercept
    X = rng.normal(size=(n, N_D))
    actions = rng.integers(N_A, size=n)
    Z = np.hstack([X, np.ones((n, 1))])
    rewards = np.einsum("ij,ij->i", Z, theta[actions]) + rng.normal(0, noise, n)
    return X, actions, rewards, theta


def _ridge(X, actions, rewards, ridge, action, scale=1.0):
    """Independent ridge fit: (ridge I + Z'Z)^-1 Z'r and the covariance, for one action."""
    Z = np.hstack([X, np.ones((len(X), 1))])[actions == action]
    precision = ridge * np.eye(N_D + 1) + Z.T @ Z
    cov = np.linalg.inv(precision)
    return cov @ Z.T @ (rewards[actions == action] / scale), cov


@pytest.mark.parametrize("cls", [LinUCBLearner, LinTSLearner])
@pytest.mark.parametrize("batch", [False, True])
def test_coefficients_equal_closed_form_ridge(cls, batch):
    # about 1,500 rows per action: more than the 512-update refresh period of the inverse
    X, actions, rewards, _ = _data(0, 6000)
    learner = cls(ACTIONS, FEATURES, ridge=2.0, reward_scale=4.0)
    if batch:
        learner.update_batch(X[:3000], actions[:3000], np.full(3000, 0.25), rewards[:3000])
        learner.update_batch(X[3000:], actions[3000:], np.full(3000, 0.25), rewards[3000:])
    else:
        for x, a, r in zip(X, actions, rewards, strict=True):
            learner.update(x, int(a), 0.25, float(r))
    for a in range(N_A):
        coef, _ = _ridge(X, actions, rewards, 2.0, a, scale=4.0)
        np.testing.assert_allclose(learner.coefficients[a], coef, rtol=1e-9, atol=1e-12)


def test_linucb_recovers_the_true_coefficients():
    X, actions, rewards, theta = _data(1, 8000, noise=0.5)
    learner = LinUCBLearner(ACTIONS, FEATURES, ridge=1.0, reward_scale=1.0)
    learner.update_batch(X, actions, np.full(len(X), 0.25), rewards)
    # about 2,000 rows per action, noise 0.5: standard errors near 0.011
    np.testing.assert_allclose(learner.coefficients, theta, atol=0.06)


def test_linucb_probabilities_follow_the_independent_ucb():
    X, actions, rewards, _ = _data(2, 200)
    alpha, eps, ridge = 0.8, 0.2, 1.5
    learner = LinUCBLearner(
        ACTIONS, FEATURES, alpha=alpha, epsilon=eps, ridge=ridge, reward_scale=1.0
    )
    learner.update_batch(X, actions, np.full(200, 0.25), rewards)
    fits = [_ridge(X, actions, rewards, ridge, a) for a in range(N_A)]
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = rng.normal(size=N_D)
        mask = rng.random(N_A) < 0.7
        mask[rng.integers(N_A)] = True
        z = np.append(x, 1.0)
        ucb = np.array([coef @ z + alpha * np.sqrt(z @ cov @ z) for coef, cov in fits])
        best = int(np.argmax(np.where(mask, ucb, -np.inf)))
        expected = np.where(mask, eps / mask.sum(), 0.0)
        expected[best] += 1 - eps
        np.testing.assert_allclose(learner.probabilities(x, mask), expected, atol=1e-12)
        means = np.array([coef @ z for coef, _ in fits])
        assert learner.greedy(x, mask) == int(np.argmax(np.where(mask, means, -np.inf)))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("zero_column", [None, 1])
def test_batch_scores_equal_the_closed_form_row_by_row(order, intercept, zero_column):
    """``RidgeStats.scores`` builds the design rows in cached blocks from a batch in either
    layout, leaving out a column that is zero on every row; means and ``z^T C_a z`` equal the
    closed form of every row (1,300 rows: two full blocks and a partial one)."""
    from engine.learners._ridge import RidgeStats

    X, actions, rewards, _ = _data(3, 300)
    p = N_D + intercept
    design = np.column_stack([X, np.ones(len(X))]) if intercept else X
    stats = RidgeStats(N_A, p, 1.5)
    stats.add_many(design, actions, rewards)
    rows = np.asarray(np.random.default_rng(4).normal(size=(1300, N_D)), order=order)
    if zero_column is not None:
        rows[:, zero_column] = 0.0
    means, variances = stats.scores(rows, intercept)
    z = np.column_stack([rows, np.ones(len(rows))]) if intercept else rows
    cov = [
        np.linalg.inv(1.5 * np.eye(p) + design[actions == a].T @ design[actions == a])
        for a in range(N_A)
    ]
    expected = np.column_stack([np.einsum("ni,ij,nj->n", z, c, z) for c in cov])
    np.testing.assert_allclose(variances, expected, rtol=1e-10)
    np.testing.assert_allclose(means, z @ stats.coef.T, rtol=1e-12, atol=1e-12)
    one_mean, one_var = stats.scores(rows[7], intercept)
    np.testing.assert_allclose(one_mean, means[7], rtol=1e-12)
    np.testing.assert_allclose(one_var, variances[7], rtol=1e-10)
    with pytest.raises(ValueError, match=f"X has {N_D + 1} columns, must be {N_D}"):
        stats.scores(np.zeros((2, N_D + 1)), intercept)


def test_linucb_optimism_prefers_the_untried_action():
    """With equal means, the action with no data has the widest interval and wins the UCB."""
    learner = LinUCBLearner(ACTIONS, FEATURES, alpha=1.0, epsilon=0.0, reward_scale=1.0)
    rng = np.random.default_rng(4)
    for _ in range(30):
        for a in (0, 1, 3):
            learner.update(rng.normal(size=N_D), a, 1.0, 0.0)
    probs = learner.probabilities(np.array([0.1, -0.2, 0.3]), np.ones(N_A, dtype=bool))
    np.testing.assert_array_equal(probs, [0.0, 0.0, 1.0, 0.0])


def _ts_probabilities(mean: np.ndarray, sd: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """P(action a has the largest of independent normal scores), by numerical integration."""
    idx = np.flatnonzero(mask)
    out = np.zeros(len(mean))
    for a in idx:
        others = [b for b in idx if b != a]

        def density(s, a=a, others=others):
            value = stats.norm.pdf(s, mean[a], sd[a])
            for b in others:
                value *= stats.norm.cdf(s, mean[b], sd[b])
            return value

        lo, hi = mean[a] - 10 * sd[a], mean[a] + 10 * sd[a]
        out[a] = integrate.quad(density, lo, hi, epsabs=1e-10, limit=200)[0]
    return out


def test_lints_monte_carlo_propensities_match_the_exact_sampling_distribution():
    # little data and a widened posterior, so that the sampling mass is spread over actions
    X, actions, rewards, _ = _data(5, 20, noise=1.0)
    noise_variance, scale, ridge = 1.0, 2.0, 1.0
    learner = LinTSLearner(
        ACTIONS, FEATURES, noise_variance=noise_variance, posterior_scale=scale, ridge=ridge,
        n_draws=40_000, floor=0.0, reward_scale=1.0, seed=6,
    )  # fmt: skip
    learner.update_batch(X, actions, np.full(20, 0.25), rewards)
    fits = [_ridge(X, actions, rewards, ridge, a) for a in range(N_A)]
    rng = np.random.default_rng(7)
    for _ in range(4):
        x = rng.normal(size=N_D)
        mask = np.array([True, True, rng.random() < 0.5, True])
        z = np.append(x, 1.0)
        mean = np.array([coef @ z for coef, _ in fits])
        sd = np.array([scale * np.sqrt(noise_variance * z @ cov @ z) for _, cov in fits])
        exact = _ts_probabilities(mean, sd, mask)
        np.testing.assert_allclose(exact.sum(), 1.0, atol=1e-6)
        assert exact.max() < 0.8  # a genuinely random choice, not a sure thing
        got_mean, got_sd = learner.score_distribution(x[None, :])
        np.testing.assert_allclose(got_mean[0], mean, rtol=1e-9)
        np.testing.assert_allclose(got_sd[0], sd, rtol=1e-9)
        # 40,000 draws: binomial standard error <= 0.0025, tolerance about 5 of them
        np.testing.assert_allclose(learner.probabilities(x, mask), exact, atol=0.0125)


def test_lints_floor_and_mixing_formula():
    learner = LinTSLearner(
        ACTIONS, FEATURES, floor=0.1, noise_variance=1e-6, n_draws=64, reward_scale=1.0, seed=0
    )
    X, actions, rewards, _ = _data(8, 400, noise=0.1)
    learner.update_batch(X, actions, np.full(400, 0.25), rewards)
    x, mask = np.array([0.5, -1.0, 0.2]), np.array([True, True, False, True])
    probs = learner.probabilities(x, mask)
    # an almost noiseless posterior puts all the sampled mass on the best mean
    best = learner.greedy(x, mask)
    expected = np.where(mask, 0.1, 0.0)
    expected[best] += 1 - 3 * 0.1
    np.testing.assert_allclose(probs, expected, atol=1e-12)


def test_lints_estimates_the_noise_variance():
    noise = 0.7
    X, actions, rewards, _ = _data(9, 20_000, noise=noise)
    learner = LinTSLearner(ACTIONS, FEATURES, ridge=1.0, reward_scale=1.0, seed=0)
    learner.update_batch(X, actions, np.full(len(X), 0.25), rewards)
    fits = [_ridge(X, actions, rewards, 1.0, a) for a in range(N_A)]
    z = np.array([0.3, -0.4, 1.1, 1.0])
    sd_true = np.array([noise * np.sqrt(z @ cov @ z) for _, cov in fits])
    _, sd = learner.score_distribution(z[None, :3])
    # 5,000 rows per action: the variance estimate is within a few percent
    np.testing.assert_allclose(sd[0], sd_true, rtol=0.05)


def test_lints_greedy_is_the_posterior_mean_argmax():
    X, actions, rewards, _ = _data(10, 300)
    learner = LinTSLearner(ACTIONS, FEATURES, reward_scale=1.0, seed=1)
    learner.update_batch(X, actions, np.full(300, 0.25), rewards)
    fits = [_ridge(X, actions, rewards, 1.0, a)[0] for a in range(N_A)]
    Xt = np.random.default_rng(11).normal(size=(100, N_D))
    means = np.hstack([Xt, np.ones((100, 1))]) @ np.array(fits).T
    mask = np.ones((100, N_A), dtype=bool)
    mask[::3, 2] = False
    expected = np.argmax(np.where(mask, means, -np.inf), axis=1)
    np.testing.assert_array_equal(learner.greedy_batch(Xt, mask), expected)
