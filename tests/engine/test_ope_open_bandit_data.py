"""Real logged data: the Open Bandit Dataset sample (ZOZOTOWN, "men" campaign).

Estimate the value of Bernoulli Thompson Sampling (BTS) from the uniform-random policy's logs
and compare with BTS's own on-policy click rate (0.0069 from 10,000 rounds, ~69 clicks).
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import ope

OBD_DIR = Path(__file__).resolve().parents[1] / "data" / "obd" / "men"  # vendored: see its README


@pytest.fixture(scope="module")
def obd_dir() -> Path:
    if not (OBD_DIR / "random.csv.gz").exists():
        pytest.fail(f"Open Bandit sample not found at {OBD_DIR} (it is part of the repository)")
    return OBD_DIR


@pytest.fixture(scope="module")
def random_log(obd_dir):
    frame = pd.read_csv(obd_dir / "random.csv.gz")
    users = pd.get_dummies(frame[[f"user_feature_{i}" for i in range(4)]].astype(str))
    affinity = frame[[c for c in frame.columns if c.startswith("user-item_affinity_")]]
    positions = frame["position"].to_numpy() - 1
    feedback = {  # the Open Bandit Pipeline's bandit_feedback layout (0-based positions)
        "n_actions": 34,
        "action": frame["item_id"].to_numpy(),
        "reward": frame["click"].to_numpy(),
        "pscore": frame["propensity_score"].to_numpy(),
        "position": positions,
        "context": np.hstack(
            [users.to_numpy(float), affinity.to_numpy(float), np.eye(3)[positions]]
        ),
    }
    action_dist = np.load(obd_dir / "bts_action_dist.npz")["action_dist"]
    return ope.from_obp(feedback), action_dist


@pytest.fixture(scope="module")
def bts_on_policy(obd_dir):
    clicks = pd.read_csv(obd_dir / "bts.csv.gz")["click"].to_numpy(float)
    return clicks.mean(), clicks.std(ddof=1) / math.sqrt(clicks.size)


@pytest.fixture(scope="module")
def table(random_log):
    log, action_dist = random_log
    target = ope.target_probs_at_positions(action_dist, log.positions)
    return ope.evaluate(
        log.rewards,
        log.actions,
        log.logged_probs,
        target,
        contexts=log.contexts,
        estimators=["ipw", "snipw", "dm", "dr", "sndr"],
        seed=0,
    )


def test_ipw_equals_the_plain_formula(random_log, table):
    log, action_dist = random_log
    target_logged = action_dist[log.actions, log.positions]
    np.testing.assert_allclose(log.logged_probs, 1 / 34, rtol=1e-12)
    ipw = np.mean(log.rewards * target_logged / log.logged_probs)
    snipw = np.sum(log.rewards * target_logged / log.logged_probs) / np.sum(
        target_logged / log.logged_probs
    )
    np.testing.assert_allclose(table.loc["ipw", "value"], ipw, rtol=1e-12)
    np.testing.assert_allclose(table.loc["snipw", "value"], snipw, rtol=1e-12)
    np.testing.assert_allclose(table.loc["on-policy", "value"], log.rewards.mean(), rtol=1e-12)
    np.testing.assert_allclose(table.loc["ipw", "max_weight"], 34 * action_dist.max(), rtol=1e-12)


def test_estimates_are_consistent_with_bts_on_policy_click_rate(table, bts_on_policy):
    """Both figures are noisy (about 46 and 69 clicks): require agreement within 3 combined
    standard errors. Measured: IPW 0.00453 (se 0.00118) vs 0.0069 (se 0.00083), 1.6 combined se.
    The 95% IPW interval (upper end 0.00685) just misses 0.0069, so that is not asserted."""
    value, se = bts_on_policy
    assert value == pytest.approx(0.0069, abs=1e-12)
    for name in ("ipw", "snipw", "dr", "sndr"):
        gap = abs(table.loc[name, "value"] - value)
        assert gap < 3 * math.hypot(table.loc[name, "se"], se), (name, gap)
    # Importance weights are well behaved here: mean near 1, ESS a sizeable share of n.
    assert abs(table.loc["ipw", "mean_weight"] - 1) < 0.05
    assert table.loc["ipw", "ess"] > 0.2 * table.loc["ipw", "n"]
