"""Holm correction and the ship / do-not-ship rule."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from engine import abtest


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holm_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 0.05, 4), rng.uniform(0, 1, 8), [0.02, 0.02]])
    rng.shuffle(p)
    expected = multipletests(p, alpha=0.05, method="holm")[1]
    assert abtest.holm(p) == pytest.approx(expected, rel=1e-12)


def test_compare_holm_column_covers_only_the_primary_family():
    rng = np.random.default_rng(3)
    users = np.arange(6000)
    arm = rng.choice(["control", "B", "C", "D"], users.size)
    lift = pd.Series(arm).map({"control": 0.0, "B": 0.1, "C": 0.03, "D": 0.0}).to_numpy()
    df = pd.DataFrame(
        {
            "user_id": users,
            "arm": arm,
            "profit": rng.normal(1.0 + lift, 1.0),
            "converted": rng.random(users.size) < 0.2,
        }
    )
    table = abtest.compare(df, metrics=["profit", "converted"])
    profit = table[table["metric"] == "profit"]
    expected = multipletests(profit["p_value"], method="holm")[1]
    assert profit["p_value_holm"].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert table.loc[table["metric"] == "converted", "p_value_holm"].isna().all()
    both = abtest.compare(df, metrics=["profit", "converted"], primary=["profit", "converted"])
    assert both["p_value_holm"].to_numpy() == pytest.approx(
        multipletests(both["p_value"], method="holm")[1]
    )


def table_row(metric, arm, est, low, high, p, **extra):
    return {
        "metric": metric,
        "arm": arm,
        "abs_effect": est,
        "ci_low": low,
        "ci_high": high,
        "p_value": p,
        "rel_effect": np.nan,
        "rel_ci_low": np.nan,
        "rel_ci_high": np.nan,
        **extra,
    }


def test_ship_verdicts_ship_block_and_inconclusive_with_reasons():
    table = pd.DataFrame(
        [
            table_row("profit", "B", 0.40, 0.20, 0.60, 0.0001),
            table_row("profit", "C", 0.45, 0.25, 0.65, 0.0001),
            table_row("profit", "D", 0.10, -0.10, 0.30, 0.30),
            table_row("profit", "E", -0.40, -0.60, -0.20, 0.0001),
            table_row("converted", "B", -0.002, -0.006, 0.002, 0.3),
            table_row("converted", "C", -0.020, -0.030, -0.012, 0.0001),
            table_row("converted", "D", 0.0, -0.004, 0.004, 0.9),
            table_row("converted", "E", 0.0, -0.004, 0.004, 0.9),
            table_row("coupon_cost", "B", 0.30, 0.20, 0.40, 0.001),
            table_row("coupon_cost", "C", 0.10, 0.00, 0.20, 0.05),
            table_row("coupon_cost", "D", 0.0, -0.1, 0.1, 0.9),
            table_row("coupon_cost", "E", 0.0, -0.1, 0.1, 0.9),
        ]
    )
    table.attrs["confidence"] = 0.95
    verdicts = abtest.ship_verdicts(
        table, primary="profit", guardrails={"converted": 0.01, "coupon_cost": 0.5}
    )
    assert {arm: v.decision for arm, v in verdicts.items()} == {
        "B": "ship",
        "C": "do not ship",
        "D": "inconclusive",
        "E": "do not ship",
    }
    assert verdicts["B"].ship and not verdicts["C"].ship
    assert "significantly better than control" in verdicts["B"].reasons[0]
    assert "guardrail converted" in verdicts["C"].reasons[1]
    assert "significantly worse beyond the margin" in verdicts["C"].reasons[1]
    assert "within the margin" in verdicts["B"].reasons[2]  # coupon cost +0.3 (CI up to 0.4) < 0.5
    assert "not significantly different from control" in verdicts["D"].reasons[0]
    assert "significantly worse than control" in verdicts["E"].reasons[0]
    # A tighter coupon-cost margin (lower is better) blocks B: its CI 0.20..0.40 lies above 0.15.
    tight = abtest.ship_verdicts(table, guardrails={"coupon_cost": 0.15})
    assert tight["B"].decision == "do not ship"


def test_ship_verdicts_uses_holm_across_arms():
    # Raw p = 0.03 for both arms: significant alone, not after Holm (0.06).
    table = pd.DataFrame(
        [
            table_row("profit", "B", 0.2, 0.02, 0.38, 0.03),
            table_row("profit", "C", 0.2, 0.02, 0.38, 0.03),
        ]
    )
    assert {v.decision for v in abtest.ship_verdicts(table).values()} == {"inconclusive"}
    assert abtest.ship_verdicts(table.iloc[:1])["B"].decision == "ship"


def test_ship_verdicts_relative_guardrail_sequential_and_srm():
    table = pd.DataFrame(
        [
            table_row("profit", "B", 0.3, 0.1, 0.5, 0.001, cs_low=-0.05, cs_high=0.7),
            {
                **table_row(
                    "converted", "B", -0.01, -0.02, -0.005, 0.01, cs_low=-0.03, cs_high=0.01
                ),
                "rel_effect": -0.08,
                "rel_ci_low": -0.12,
                "rel_ci_high": -0.06,
            },
        ]
    )
    rel_guard = abtest.MetricGuardrail(margin=0.05, relative=True)
    assert (
        abtest.ship_verdicts(table, guardrails={"converted": rel_guard})["B"].decision
        == "do not ship"
    )
    assert abtest.ship_verdicts(table, guardrails={"converted": 0.05})["B"].decision == "ship"
    # Always-valid evidence: the CS still includes 0, so no decision yet.
    assert abtest.ship_verdicts(table, sequential=True)["B"].decision == "inconclusive"
    table.attrs["srm"] = {"flagged": True, "p_value": 1e-9}
    verdict = abtest.ship_verdicts(table)["B"]
    assert verdict.decision == "do not ship" and "sample ratio mismatch" in verdict.reasons[-1]


def test_ship_verdicts_end_to_end_prefers_cuped_when_available():
    rng = np.random.default_rng(1)
    users = np.arange(8000)
    arm = np.where(users % 2 == 0, "control", "B")
    # Same pre-period values in both arms (no chance imbalance): CUPED only removes noise.
    half = rng.normal(0, 1, users.size // 2)
    pre = np.empty(users.size)
    pre[arm == "control"], pre[arm == "B"] = half, rng.permutation(half)
    profit = 1.0 + 0.035 * (arm == "B") + 0.9 * pre + rng.normal(0, 0.45, users.size)
    df = pd.DataFrame(
        {
            "user_id": users,
            "arm": arm,
            "profit": profit,
            "pre_profit": pre,
            "coupon_cost": rng.exponential(0.2, users.size),
        }
    )
    table = abtest.compare(
        df, metrics=["profit", "coupon_cost"], covariates={"profit": "pre_profit"}
    )
    with_cuped = abtest.ship_verdicts(table, guardrails={"coupon_cost": 0.05})["B"]
    without = abtest.ship_verdicts(table, guardrails={"coupon_cost": 0.05}, use_cuped=False)["B"]
    # True effect 0.035 with per-user sd ~1.0 (plain) vs ~0.45 (CUPED): only CUPED detects it.
    assert with_cuped.decision == "ship" and "CUPED" in with_cuped.reasons[0]
    assert without.decision == "inconclusive"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"primary": "revenue"}, "metric 'revenue' not found"),
        ({"guardrails": {"converted": -0.1}}, r"guardrails\['converted'\] margin == -0.1"),
        ({"alpha": 1.5}, "alpha == 1.5"),
        ({"sequential": True}, "cs_low"),
    ],
)
def test_ship_verdicts_bad_input(kwargs, message):
    table = pd.DataFrame(
        [
            table_row("profit", "B", 0.3, 0.1, 0.5, 0.001),
            table_row("converted", "B", 0.0, -0.01, 0.01, 0.9),
        ]
    )
    with pytest.raises(ValueError, match=message):
        abtest.ship_verdicts(table, **kwargs)
