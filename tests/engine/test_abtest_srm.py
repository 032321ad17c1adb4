"""Sample-ratio mismatch check against scipy's chi-square test."""

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engine import abtest


def carts_for(counts, rng):
    """Cart rows for the given units per arm, 1-4 carts per unit."""
    arms = np.repeat(list(counts), list(counts.values()))
    users = np.arange(arms.size)
    reps = rng.integers(1, 5, arms.size)
    return pd.DataFrame({"user_id": np.repeat(users, reps), "arm": np.repeat(arms, reps)})


def test_p_value_equals_scipy_chisquare_on_units_not_carts():
    counts = {"control": 3050, "B": 2950, "C": 4000}
    df = carts_for(counts, np.random.default_rng(1))
    plan = {"control": 0.3, "B": 0.3, "C": 0.4}
    result = abtest.srm(df, expected=plan)
    levels = sorted(counts)
    chi2, p = stats.chisquare([counts[k] for k in levels], [10000 * plan[k] for k in levels])
    assert result["p_value"] == pytest.approx(p, rel=1e-12)
    assert result["chi2"] == pytest.approx(chi2, rel=1e-12)
    assert result["counts"] == counts
    assert result["expected"] == pytest.approx({k: 10000 * v for k, v in plan.items()})
    assert not result["flagged"]


def test_52_48_split_at_20000_units_is_flagged_loudly(caplog):
    df = carts_for({"control": 10400, "treatment": 9600}, np.random.default_rng(2))
    with caplog.at_level(logging.WARNING, logger="engine.abtest.srm"):
        result = abtest.srm(df)
    assert result["flagged"] and result["p_value"] < 1e-6
    assert result["p_value"] == pytest.approx(stats.chisquare([10400, 9600]).pvalue, rel=1e-12)
    assert any("SAMPLE RATIO MISMATCH" in record.getMessage() for record in caplog.records)


def test_balanced_split_is_not_flagged(caplog):
    df = carts_for({"control": 10050, "treatment": 9950}, np.random.default_rng(3))
    with caplog.at_level(logging.WARNING, logger="engine.abtest.srm"):
        result = abtest.srm(df)
    assert not result["flagged"] and result["p_value"] > 0.1
    assert not caplog.records


def test_planned_arm_with_no_units_counts_as_zero():
    df = carts_for({"control": 500, "B": 500}, np.random.default_rng(4))
    result = abtest.srm(df, expected={"control": 0.4, "B": 0.4, "C": 0.2})
    assert result["counts"]["C"] == 0 and result["flagged"]


@pytest.mark.parametrize(
    "expected, message",
    [
        ({"control": 0.5, "B": 0.6}, "sum to"),
        ({"control": 1.0}, "at least two"),
        ({"control": 0.5, "X": 0.5}, "no planned share for arm"),
        ({"control": -0.5, "B": 1.5}, r"expected\['control'\] == -0.5"),
    ],
)
def test_bad_plans_raise(expected, message):
    df = carts_for({"control": 50, "B": 50}, np.random.default_rng(5))
    with pytest.raises(ValueError, match=message):
        abtest.srm(df, expected=expected)
