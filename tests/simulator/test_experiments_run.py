"""run_experiment and analyse: structure, determinism, learning during the test, the OPE
pre-screen against truth, simulated A/A false positives and coverage of a true effect."""

import numpy as np
import pandas as pd
import pytest

from engine.actions import DAY
from policies.base import Policy
from simulator import SimConfig
from simulator.experiments import assign, run_experiment


class Static(Policy):
    """All mass on one action when eligible, else on none (vectorised)."""

    def __init__(self, action):
        super().__init__()
        self.name = f"static:{action}"
        self.action = self._index[action]

    def _probabilities(self, context, eligible, truth):
        return self.one_hot(self.action_names[self.action], eligible)

    def probabilities_batch(self, contexts, eligible, truth=None):
        mask = np.asarray(eligible, dtype=bool)
        out = np.zeros(mask.shape)
        chosen = np.where(mask[:, self.action], self.action, 0)
        out[np.arange(len(mask)), chosen] = 1.0
        return out


class Uniform(Policy):
    name = "uniform"

    def _probabilities(self, context, eligible, truth):
        return eligible.astype(float)

    def probabilities_batch(self, contexts, eligible, truth=None):
        mask = np.asarray(eligible, dtype=float)
        return mask / mask.sum(axis=1, keepdims=True)


class TrueBest(Policy):
    """The best eligible action by the simulator's truth: clearly better than doing nothing."""

    name = "true-best"
    needs_truth = True

    def _probabilities(self, context, eligible, truth):
        return self.one_hot(
            self.action_names[int(np.argmax(np.where(eligible, truth, -np.inf)))], eligible
        )


class Learner(Policy):
    """Epsilon-greedy on per-action mean rewards; records what it learnt from."""

    name = "counting-learner"
    learns = True

    def __init__(self):
        super().__init__()
        self.sums = np.zeros(7)
        self.counts = np.zeros(7)
        self.rewards_seen = []

    def _probabilities(self, context, eligible, truth):
        means = np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), 10.0)
        best = int(np.argmax(np.where(eligible, means, -np.inf)))
        return 0.2 * eligible / eligible.sum() + 0.8 * (np.arange(7) == best)

    def _update(self, context, action, probability, reward, truth):
        self.sums[action] += reward
        self.counts[action] += 1
        self.rewards_seen.append(reward)


SMALL = {"users": 600, "days": 3, "pre_days": 2, "progress": False}


@pytest.fixture(scope="module")
def small_result():
    return run_experiment(
        {"none": Static("none"), "recall": Static("recall_message"), "learner": Learner()},
        seed=11,
        logging_policy=Static("recall_message"),
        **SMALL,
    )


def test_carts_table_has_the_documented_columns_and_ranges(small_result):
    carts, pre = small_result.carts, small_result.pre_log
    assert list(carts.columns) == [
        "user_id",
        "arm",
        "day",
        "timestamp",
        "action",
        "propensity",
        "profit",
        "converted",
        "revenue",
        "coupon_cost",
        "true_profit",
        "shopper_type",
        "pre_profit",
        "pre_carts",
    ]
    assert set(carts["day"]) == {1, 2, 3} and set(pre["day"]) == {-2, -1}
    assert carts["timestamp"].is_monotonic_increasing
    assert pre["timestamp"].max() < carts["timestamp"].min()
    # ~350 carts a day (SimConfig default), Poisson arrivals
    assert abs(len(carts) - 3 * 350) < 5 * np.sqrt(3 * 350)
    assert small_result.control == "none" and small_result.arms == ("none", "recall", "learner")
    # static arms decide deterministically
    static = carts[carts["arm"] != "learner"]
    assert (static["propensity"] == 1.0).all()
    assert set(carts.loc[carts["arm"] == "none", "action"]) == {"none"}
    assert set(carts.loc[carts["arm"] == "recall", "action"]) <= {"recall_message", "none"}
    # realised profit is the truth plus noise: on average close (outcome noise only)
    diff = carts["profit"] - carts["true_profit"]
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(diff))


def test_every_shopper_stays_in_the_arm_given_by_the_salted_hash(small_result):
    carts = small_result.carts
    assert (carts.groupby("user_id")["arm"].nunique() == 1).all()
    users = carts.drop_duplicates("user_id")
    expected = assign(users["user_id"].tolist(), list(small_result.arms), small_result.salt)
    np.testing.assert_array_equal(users["arm"].to_numpy(), expected)


def test_pre_period_covariates_are_each_users_pre_period_totals(small_result):
    carts, pre = small_result.carts, small_result.pre_log
    totals = pre.groupby("user_id")["profit"].sum()
    for user, value in carts.drop_duplicates("user_id").set_index("user_id")["pre_profit"].items():
        assert value == pytest.approx(totals.get(user, 0.0))
    assert (
        carts["pre_carts"] == carts["user_id"].map(pre["user_id"].value_counts()).fillna(0)
    ).all()
    # the logging policy explores: 90% recall (when eligible), 10% uniform over eligible actions
    # (propensity 1 only where nothing but "none" was eligible)
    assert (pre.loc[pre["propensity"] == 1, "action"] == "none").all()
    assert (pre["propensity"] < 1).mean() > 0.9 and pre["action"].nunique() > 3


def test_the_learning_arm_learns_from_its_own_test_carts_only():
    learner = Learner()
    result = run_experiment(
        {"none": Static("none"), "learner": learner},
        seed=5,
        logging_policy=Static("recall_message"),
        **SMALL,
    )
    mine = result.carts[result.carts["arm"] == "learner"]
    assert learner.counts.sum() == len(mine)
    # it learnt the realised profits of its carts, in time order, not the truth
    np.testing.assert_allclose(learner.rewards_seen, mine["profit"].to_numpy())
    # its pre-screen copy trained on the first half of the pre-period, evaluated on the second
    row = result.prescreen.set_index("arm").loc["learner"]
    assert row["learns"] and row["basis"].startswith("second half")
    split = SimConfig().start_time + SMALL["pre_days"] * DAY / 2
    assert row["n"] == (result.pre_log["timestamp"] >= split).sum() > 0
    assert result.prescreen.set_index("arm").loc["none", "n"] == len(result.pre_log)


def test_same_seed_same_result_and_another_seed_differs():
    def run(seed):
        return run_experiment(
            {"none": Static("none"), "uniform": Uniform(), "learner": Learner()},
            seed=seed,
            logging_policy=Static("recall_message"),
            **SMALL,
        )

    a, b, c = run(3), run(3), run(4)
    pd.testing.assert_frame_equal(a.carts, b.carts)
    pd.testing.assert_frame_equal(a.pre_log, b.pre_log)
    pd.testing.assert_frame_equal(a.prescreen, b.prescreen)
    assert len(a.carts) != len(c.carts) or not a.carts["profit"].equals(c.carts["profit"])
    ta, tb = a.analyse().table, b.analyse().table
    pd.testing.assert_frame_equal(ta, tb)


def test_registry_learners_are_deterministic_for_a_seed():
    def run():
        return run_experiment(
            ["none", "vw", "linucb"], users=600, days=2, pre_days=2, seed=9, progress=False
        )

    a, b = run(), run()
    pd.testing.assert_frame_equal(a.carts, b.carts)
    pd.testing.assert_frame_equal(a.prescreen, b.prescreen)
    assert a.prescreen.set_index("arm").loc[["vw", "linucb"], "learns"].all()


def test_prescreen_estimates_cover_the_truth_under_uniform_logging():
    # uniform logging gives well-behaved importance weights: DR must be within its interval
    # of the true value for static policies (exact probabilities) on the same logged carts
    result = run_experiment(
        {"none": Static("none"), "recall": Static("recall_message"), "coupon": Static("coupon_10")},
        users=2000,
        days=1,
        pre_days=6,
        seed=2,
        exploration=1.0,
        logging_policy=Static("none"),
        progress=False,
    )
    table = result.prescreen.set_index("arm")
    assert (table["n"] == len(result.pre_log)).all()
    for arm, row in table.iterrows():
        assert row["dr_ci_low"] <= row["true_value"] <= row["dr_ci_high"], arm
    for arm in ("recall", "coupon"):
        row = table.loc[arm]
        assert row["effect_ci_low"] <= row["true_effect"] <= row["effect_ci_high"], arm
    # the paired effect is the difference of the arms' DR values on the same carts
    assert table.loc["recall", "effect"] == pytest.approx(
        table.loc["recall", "dr"] - table.loc["none", "dr"], abs=1e-9
    )
    # truth on the logged carts: the mean true profit of doing nothing is what the log's truth
    # says for carts where the logging policy did nothing
    logged_none = result.pre_log[result.pre_log["action"] == "none"]["true_profit"]
    assert table.loc["none", "true_value"] == pytest.approx(
        logged_none.mean(), abs=4 * logged_none.std() / np.sqrt(len(logged_none))
    )


def test_analysis_reports_true_effect_ope_and_decisions(small_result):
    analysis = small_result.analyse()
    table = analysis.table
    profit = table[table["metric"] == "profit"].set_index("arm")
    means = small_result.carts.groupby("arm")["true_profit"].mean()
    for arm in ("recall", "learner"):
        assert profit.loc[arm, "true_effect"] == pytest.approx(means[arm] - means["none"])
        assert np.isfinite(profit.loc[arm, "ope_effect"])
        assert profit.loc[arm, "cs_low"] <= profit.loc[arm, "ci_low"]  # the CS is wider
    assert table.loc[table["metric"] != "profit", "true_effect"].isna().all()
    assert set(analysis.verdicts) == {"recall", "learner"}
    assert analysis.covariates == ("pre_profit",)
    assert not analysis.srm["flagged"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"users": 1}, "users == 1"),
        ({"days": 0}, "days == 0"),
        ({"pre_days": -1}, "pre_days == -1"),
        ({"seed": -3}, "seed == -3"),
        ({"batch": 0}, "batch == 0"),
        ({"exploration": 0.0}, "exploration == 0.0"),
        ({"arms": ["none"]}, "at least two"),
        ({"arms": "none,rule"}, "not a str"),
        ({"weights": [1, 2, 3]}, "one per arm"),
    ],
)
def test_bad_arguments_raise_value_errors(kwargs, message):
    args = {
        "arms": {"a": Static("none"), "b": Static("none")},
        "users": 100,
        "days": 1,
        "seed": 0,
        "progress": False,
        "logging_policy": Static("none"),
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        run_experiment(**args)


def test_a_shared_policy_object_is_refused():
    policy = Static("none")
    with pytest.raises(ValueError, match="same Policy object"):
        run_experiment({"a": policy, "b": policy}, users=100, days=1, seed=0, progress=False)


# --------------------------------------------------------------------------- statistics
AA_RUNS = 100


@pytest.mark.slow
def test_simulated_aa_tests_reject_at_about_the_nominal_rate():
    """100 A/A tests (both arms uniform-random, independent shops and salts), level 5%.

    Tolerance: with a true 5% rate the number of rejections X ~ Binomial(100, 0.05);
    P(X >= 12) = 0.4% and P(X = 0) = 0.6%, so 1 <= X <= 11 fails a correct test rarely, while an
    inflated rate (e.g. peeking without correction, or clustering ignored) fails it. The
    always-valid sequence is conservative: at most 11 rejections.
    """
    rejected = {"delta": 0, "cuped": 0, "sequence": 0}
    for seed in range(AA_RUNS):
        result = run_experiment(
            {"A": Uniform(), "B": Uniform()},
            users=300,
            days=3,
            pre_days=1,
            seed=1000 + seed,
            prescreen=False,
            progress=False,
            logging_policy=Static("recall_message"),
        )
        row = result.analyse(metrics=["profit"]).table.iloc[0]
        rejected["delta"] += row["p_value"] < 0.05
        rejected["cuped"] += row["cuped_p_value"] < 0.05
        rejected["sequence"] += not row["cs_low"] <= 0.0 <= row["cs_high"]
    assert 1 <= rejected["delta"] <= 11, rejected
    assert 1 <= rejected["cuped"] <= 11, rejected
    assert rejected["sequence"] <= 11, rejected


def test_intervals_cover_the_true_effect_when_one_arm_is_clearly_better():
    """10 seeds of none vs the truth's best action (about +1 USD per cart, ~6,000 carts a run).

    With 95% intervals (which, against the outcome-noise-free true effect, cover at least 95%),
    P(at most 7 of 10 covered) < 1.2%. The standard error is about 0.28, so the power at 5% is
    about 0.95 or more and P(at most 7 of 10 significant) < 1.2% as well.
    """
    covered, cs_covered, significant = 0, 0, 0
    for seed in range(10):
        result = run_experiment(
            {"none": Static("none"), "best": TrueBest()},
            users=4000,
            days=3,
            pre_days=1,
            seed=200 + seed,
            prescreen=False,
            progress=False,
            logging_policy=Static("recall_message"),
            config={"carts_per_day": 2000},
        )
        row = result.analyse(metrics=["profit"]).table.iloc[0]
        assert row["true_effect"] > 0.5
        covered += row["ci_low"] <= row["true_effect"] <= row["ci_high"]
        cs_covered += row["cs_low"] <= row["true_effect"] <= row["cs_high"]
        significant += row["p_value"] < 0.05
    assert covered >= 8 and cs_covered >= 8 and significant >= 8, (covered, cs_covered, significant)
