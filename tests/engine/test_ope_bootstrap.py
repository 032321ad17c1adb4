"""The vectorised Poisson bootstrap: distribution of counts, determinism, agreement with theory."""

import math

import numpy as np
import pytest
from scipy import stats

from engine import ope
from engine.ope.intervals import BLOCK_ROWS, bootstrap_sums, poisson_counts
from engine.ope.synthetic import SyntheticWorld


def test_poisson_counts_follow_poisson_one():
    counts = poisson_counts(np.random.default_rng(0), 200, 5_000).ravel()
    observed = np.bincount(counts, minlength=8)[:8] / counts.size
    expected = stats.poisson.pmf(np.arange(8), 1.0)
    sd = np.sqrt(expected * (1 - expected) / counts.size)  # binomial sd of each share
    assert np.all(np.abs(observed - expected) < 4 * sd), (observed - expected) / sd
    assert abs(counts.mean() - 1.0) < 4e-3 and abs(counts.var() - 1.0) < 6e-3


def test_bootstrap_sums_equal_an_explicit_weighted_sum():
    rng_terms = np.random.default_rng(1)
    terms = rng_terms.normal(size=(BLOCK_ROWS + 37, 3))  # more than one block
    sums, counts = bootstrap_sums(terms, 16, np.random.default_rng(2))
    replay = np.random.default_rng(2)
    weights = np.hstack(
        [poisson_counts(replay, 16, BLOCK_ROWS), poisson_counts(replay, 16, 37)]
    ).astype(float)
    np.testing.assert_allclose(sums, weights @ terms, rtol=1e-12)
    np.testing.assert_array_equal(counts, weights.sum(axis=1))


@pytest.fixture(scope="module")
def log():
    world = SyntheticWorld.make(n_actions=4, seed=5)
    data = world.sample(20_000, np.random.default_rng(8))
    return data, np.clip(data.expected_rewards + 0.05, 0, 1)


def test_bootstrap_is_deterministic_for_a_seed_and_varies_with_it(log):
    data, q_hat = log
    args = (data.rewards, data.actions, data.logged_probs, data.target_probs)
    a = ope.evaluate(*args, estimated_rewards=q_hat, ci="bootstrap", n_bootstrap=200, seed=3)
    b = ope.evaluate(
        *args,
        estimated_rewards=q_hat,
        ci="bootstrap",
        n_bootstrap=200,
        rng=np.random.default_rng(3),
    )
    c = ope.evaluate(*args, estimated_rewards=q_hat, ci="bootstrap", n_bootstrap=200, seed=4)
    np.testing.assert_array_equal(a.to_numpy(float), b.to_numpy(float))
    assert not np.array_equal(a["ci_low"].to_numpy(), c["ci_low"].to_numpy())
    analytic = ope.evaluate(*args, estimated_rewards=q_hat, ci="analytic")
    np.testing.assert_array_equal(a["value"].to_numpy(), analytic["value"].to_numpy())
    assert a.attrs["ci"] == "bootstrap" and analytic.attrs["ci"] == "analytic"


def test_bootstrap_se_and_interval_agree_with_the_delta_method(log):
    data, q_hat = log
    args = (data.rewards, data.actions, data.logged_probs, data.target_probs)
    names = ["ipw", "snipw", "dr", "sndr", "on-policy"]
    boot = ope.evaluate(
        *args, estimated_rewards=q_hat, estimators=names, ci="bootstrap", n_bootstrap=1_000, seed=11
    )
    analytic = ope.evaluate(*args, estimated_rewards=q_hat, estimators=names, ci="analytic")
    # se of a bootstrap sd from 1,000 replicates is ~2.2%; allow 10%.
    np.testing.assert_allclose(boot["se"], analytic["se"], rtol=0.10)
    for name in names:
        z = 1.959963984540054
        half = z * analytic.loc[name, "se"]
        assert abs(boot.loc[name, "ci_low"] - (analytic.loc[name, "value"] - half)) < 0.25 * half
        assert abs(boot.loc[name, "ci_high"] - (analytic.loc[name, "value"] + half)) < 0.25 * half


def test_bootstrap_of_a_mean_matches_its_exact_variance():
    # Poisson-bootstrap replicate of a mean: Var ~ sum (x_i - xbar)^2 / n^2.
    x = np.random.default_rng(0).exponential(size=5_000)
    table = ope.evaluate(
        x,
        np.zeros(x.size, int),
        np.ones(x.size),
        np.ones((x.size, 1)),
        estimators=["on-policy"],
        ci="bootstrap",
        n_bootstrap=2_000,
        seed=1,
    )
    exact = math.sqrt(np.sum((x - x.mean()) ** 2)) / x.size
    assert abs(table.loc["on-policy", "se"] / exact - 1) < 0.07


def test_chunked_bootstrap_sums_merge(log):
    data, q_hat = log
    rng = np.random.default_rng(5)
    parts = [
        ope.summarize(
            data.rewards[s],
            data.actions[s],
            data.logged_probs[s],
            data.target_probs[s],
            estimated_rewards=q_hat[s],
            n_bootstrap=300,
            rng=rng,
        )
        for s in (slice(0, 7_000), slice(7_000, 20_000))
    ]
    merged = ope.finalize(ope.merge(parts), ci="bootstrap")
    whole = ope.evaluate(
        data.rewards,
        data.actions,
        data.logged_probs,
        data.target_probs,
        estimated_rewards=q_hat,
        ci="bootstrap",
        n_bootstrap=300,
        seed=6,
    )
    np.testing.assert_allclose(merged["value"], whole["value"], rtol=1e-12)
    # Different resamples, same sampling distribution: se within 20% (300 replicates).
    np.testing.assert_allclose(merged["se"], whole["se"], rtol=0.2)
    with pytest.raises(ValueError, match="no bootstrap sums"):
        ope.finalize(
            ope.merge(
                [ope.summarize(data.rewards, data.actions, data.logged_probs, data.target_probs)]
            ),
            ci="bootstrap",
        )
