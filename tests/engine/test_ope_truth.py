"""Estimators against the exactly known value of a synthetic target policy."""

import numpy as np
import pytest

from engine import ope
from engine.ope.synthetic import SyntheticWorld

WORLD = SyntheticWorld.make(n_actions=5, seed=3)


def misspecified(q: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """A reward model with a systematic, context-dependent error (DM is biased with it)."""
    return np.clip(q + 0.2 * np.tanh(contexts[:, :1]) - 0.05, 0.0, 1.0)


def test_world_truth_is_exact_and_differs_from_logging():
    by_hand = np.mean([WORLD.target[m] @ WORLD.q[m] for m in range(WORLD.pool.shape[0])])
    assert WORLD.true_value == pytest.approx(by_hand, rel=1e-12)
    assert WORLD.true_value - WORLD.logging_value > 0.2


def test_estimators_are_close_to_truth_at_large_n():
    log = WORLD.sample(200_000, np.random.default_rng(5))
    args = (log.rewards, log.actions, log.logged_probs, log.target_probs)
    truth = log.true_value
    names = ["ipw", "snipw", "dr", "sndr"]
    wrong = ope.evaluate(
        *args,
        estimated_rewards=misspecified(log.expected_rewards, log.contexts),
        estimators=[*names, "dm"],
        ci="analytic",  # every estimator's standard error (auto gives DM none)
    )
    right = ope.evaluate(
        *args,
        estimated_rewards=log.expected_rewards,
        estimators=[*names, "dm", "switch-dr", "dr-os"],
        ci="analytic",
    )
    # Unbiased (or consistent) whatever the reward model: within 4 se and 0.01 of the truth.
    for table in (wrong, right):
        for name in names:
            err = abs(table.loc[name, "value"] - truth)
            assert err < 4 * table.loc[name, "se"] and err < 0.01, (name, err)
    # With the true reward model, DM, Switch-DR and DR-OS are unbiased too.
    for name in ("dm", "switch-dr", "dr-os"):
        err = abs(right.loc[name, "value"] - truth)
        assert err < 4 * right.loc[name, "se"] + 1e-3, (name, err)
    # With the wrong model DM is clearly biased while DR corrects it.
    assert abs(wrong.loc["dm", "value"] - truth) > 10 * wrong.loc["dm", "se"]
    assert abs(wrong.loc["dm", "value"] - truth) > 5 * abs(wrong.loc["dr", "value"] - truth)
    # on-policy estimates the logging policy, not the target.
    assert (
        abs(right.loc["on-policy", "value"] - log.logging_value) < 4 * right.loc["on-policy", "se"]
    )


def test_analytic_intervals_cover_truth_at_nominal_rate():
    """Over 200 seeds of n=2,000 the 95% intervals of IPW, SNIPW and DR must cover the exact
    truth between 91% and 99% of the time (binomial sd of the rate is 1.5 points)."""
    names = ["ipw", "snipw", "dr"]
    hits = dict.fromkeys(names, 0)
    n_seeds = 200
    for seed in range(n_seeds):
        log = WORLD.sample(2_000, np.random.default_rng(1_000 + seed))
        table = ope.evaluate(
            log.rewards,
            log.actions,
            log.logged_probs,
            log.target_probs,
            estimated_rewards=misspecified(log.expected_rewards, log.contexts),
            estimators=names,
        )
        for name in names:
            hits[name] += table.loc[name, "ci_low"] <= log.true_value <= table.loc[name, "ci_high"]
    coverage = {name: count / n_seeds for name, count in hits.items()}
    for rate in coverage.values():
        assert 0.91 <= rate <= 0.99, coverage


def test_cross_fitted_dr_is_close_to_truth():
    log = WORLD.sample(20_000, np.random.default_rng(9))
    table = ope.evaluate(
        log.rewards,
        log.actions,
        log.logged_probs,
        log.target_probs,
        contexts=log.contexts,
        estimators=["dm", "dr", "sndr"],
        seed=4,
    )
    for name in ("dr", "sndr"):
        err = abs(table.loc[name, "value"] - log.true_value)
        assert err < 4 * table.loc[name, "se"], (name, err)
    # The well-specified logistic model makes DM accurate as well (bias well under 0.02).
    assert abs(table.loc["dm", "value"] - log.true_value) < 0.02
