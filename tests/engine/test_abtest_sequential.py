"""Asymptotic confidence sequences: boundary maths; daily peeks keep the false-positive rate."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from engine import abtest
from engine.abtest.sequential import cs_multiplier

LOOKS = 14


def daily_experiments(rng, runs, users, lift=0.0):
    """One cart-level DataFrame per run: users arrive on a uniform day and their carts
    (1 + geometric, mean 3) follow after geometric delays; carts after the last look are not
    seen. Profit has per-user random effects and a lognormal tail; treated profit x (1 + lift).
    Returns the frames and the true per-cart control profit."""
    total = runs * users
    arrival = rng.integers(0, LOOKS, total)
    carts = rng.geometric(1 / 3, total)
    p_user = rng.beta(0.5, 3.0, total)
    mu_user = rng.normal(4.0, 0.6, total)
    treated_user = rng.random(total) < 0.5
    owner = np.repeat(np.arange(total), carts)
    day = arrival[owner] + rng.geometric(0.5, owner.size) - 1
    converted = rng.random(owner.size) < p_user[owner]
    profit = converted * 0.3 * np.exp(mu_user[owner] + 0.8 * rng.standard_normal(owner.size)) - 0.5
    profit = np.where(treated_user[owner], profit * (1 + lift), profit)
    keep = day < LOOKS
    owner, day, profit = owner[keep], day[keep], profit[keep]
    cuts = np.searchsorted(owner, np.arange(users, total, users))
    frames = [
        pd.DataFrame(
            {"user_id": o, "arm": np.where(treated_user[o], "B", "A"), "profit": p, "day": d}
        )
        for o, p, d in zip(
            np.split(owner, cuts), np.split(profit, cuts), np.split(day, cuts), strict=True
        )
    ]
    true_control = 0.5 / 3.5 * 0.3 * np.exp(4.0 + 0.6**2 / 2 + 0.8**2 / 2) - 0.5
    return frames, true_control


def ever_misses(frames, truth):
    """Fraction of runs whose CS, and whose fixed-horizon CI, excludes ``truth`` at some look."""
    cs_miss, ci_miss = [], []
    for frame in frames:
        seq = abtest.confidence_sequence(frame, control="A", metrics="profit", look="day")
        assert len(seq) == LOOKS
        cs_miss.append(bool(((seq["cs_low"] > truth) | (seq["cs_high"] < truth)).any()))
        ci_miss.append(bool(((seq["ci_low"] > truth) | (seq["ci_high"] < truth)).any()))
    return np.mean(cs_miss), np.mean(ci_miss)


def test_boundary_is_where_the_normal_mixture_martingale_reaches_one_over_alpha():
    alpha, t, rho2 = 0.05, 500.0, 0.01
    # Standardised sum at the boundary: S = t * multiplier / sqrt(t) (unit variance).
    s = np.sqrt(t) * float(cs_multiplier(t, 1 - alpha, rho2))
    # Independent computation: integrate exp(l S - l^2 t / 2) over l ~ N(0, rho2).
    density = stats.norm(0, np.sqrt(rho2)).pdf
    value, _ = integrate.quad(
        lambda lam: np.exp(lam * s - lam * lam * t / 2) * density(lam), -1, 1, limit=200
    )
    assert value == pytest.approx(1 / alpha, rel=1e-6)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_optimal_rho2_minimises_width_at_t_opt(confidence):
    t_opt = 2500.0
    best = optimize.minimize_scalar(
        lambda r: float(cs_multiplier(t_opt, confidence, r)),
        bounds=(1e-7, 1.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert abtest.optimal_rho2(t_opt, confidence) == pytest.approx(best.x, rel=1e-3)


def test_cs_is_wider_than_ci_and_shrinks_with_running_intersection():
    frames, _ = daily_experiments(np.random.default_rng(3), runs=1, users=3000, lift=0.1)
    seq = abtest.confidence_sequence(frames[0], control="A", metrics="profit", look="day")
    assert (seq["cs_high"] - seq["cs_low"] >= seq["ci_high"] - seq["ci_low"]).all()
    assert (np.diff(seq["cs_low"]) >= 0).all() and (np.diff(seq["cs_high"]) <= 0).all()
    assert seq["n_units"].is_monotonic_increasing and seq["look"].tolist() == list(range(LOOKS))
    raw = abtest.confidence_sequence(
        frames[0], control="A", metrics="profit", look="day", running_intersection=False
    )
    low, high = abtest.asymptotic_cs(
        raw["estimate"], raw["se"], raw["n_units"] + raw["n_units_control"]
    )
    assert raw["cs_low"].to_numpy() == pytest.approx(low) and raw[
        "cs_high"
    ].to_numpy() == pytest.approx(high)


def test_past_looks_do_not_change_when_new_days_arrive():
    frames, _ = daily_experiments(np.random.default_rng(4), runs=1, users=2000)
    full = abtest.confidence_sequence(frames[0], control="A", metrics="profit", look="day")
    early = abtest.confidence_sequence(
        frames[0][frames[0]["day"] <= 6], control="A", metrics="profit", look="day"
    )
    pd.testing.assert_frame_equal(early, full.iloc[: len(early)])


def test_daily_peeking_aa_false_positive_rate():
    frames, _ = daily_experiments(np.random.default_rng(2025), runs=500, users=1500)
    cs_rate, naive_rate = ever_misses(frames, 0.0)
    # 14 daily looks at an A/A test. The CS guarantee is time-uniform: at most 5% of runs
    # ever exclude 0 (+2 points tolerance, about 2 binomial SE at 500 runs). Repeated
    # fixed-horizon 95% intervals exceed that.
    assert cs_rate <= 0.07, cs_rate
    assert naive_rate > 0.07, naive_rate


def test_cs_covers_a_true_effect_at_every_look():
    lift = 0.1
    frames, true_control = daily_experiments(
        np.random.default_rng(99), runs=150, users=1500, lift=lift
    )
    miss_rate, _ = ever_misses(frames, lift * true_control)
    # At most 5% of runs miss the truth at any look (+4 points: about 2 SE at 150 runs).
    assert miss_rate <= 0.09, miss_rate


def test_a_first_look_with_no_variation_does_not_empty_the_sequence():
    """Day 1 has no coupon redeemed in either arm (estimate 0, se 0): the sequence stays
    unbounded there instead of collapsing to [0, 0] and emptying the running intersection."""
    import pandas as pd

    from engine import abtest

    rng = np.random.default_rng(4)
    rows = []
    for day in (1, 2, 3):
        for user in range(400):
            arm = "control" if user % 2 else "treatment"
            cost = 0.0 if day == 1 else float(rng.random() < 0.3) * rng.uniform(2, 8)
            rows.append({"user_id": user, "arm": arm, "day": day, "coupon_cost": cost})
    seq = abtest.confidence_sequence(pd.DataFrame(rows), metrics="coupon_cost", look="day")
    first = seq[seq["look"] == 1].iloc[0]
    assert first["cs_low"] == -np.inf and first["cs_high"] == np.inf
    last = seq[seq["look"] == 3].iloc[0]
    assert last["cs_low"] < last["estimate"] < last["cs_high"]
