"""engine.ope.logs: decision-log frames -> arrays -> off-policy estimates.

Estimates are checked against independent numpy computations and, on synthetic logs with known
truth (engine.ope.synthetic), against the exact target value.
"""

import doctest
import math

import numpy as np
import pandas as pd
import pytest

from engine.decision_log import DecisionLog, DecisionRecord, read_log, to_parquet
from engine.ope import logs as ope_logs
from engine.ope.logs import (
    evaluate_decision_log,
    read_log_dataset,
    reward_model_features,
    target_probabilities,
)
from engine.ope.synthetic import SyntheticWorld

ACTIONS = ("none", "coupon_5", "recall_message")


def make_frame(n=6, seed=0):
    """A small read_log-like frame over ACTIONS: uniform over the eligible actions."""
    rng = np.random.default_rng(seed)
    eligible = np.ones((n, 3), dtype=bool)
    eligible[::3, 2] = False  # every third row cannot get a reminder
    probs = eligible / eligible.sum(axis=1, keepdims=True)
    actions = np.array([rng.choice(np.flatnonzero(e)) for e in eligible])
    frame = {
        "decision_id": [f"d{i}" for i in range(n)],
        "action": [ACTIONS[a] for a in actions],
        "probability": probs[np.arange(n), actions],
        "reward": rng.normal(2.0, 1.0, n).round(2),
        "reward_source": ["reward"] * (n - 1) + ["default"],
        "fallback": np.zeros(n, dtype=bool),
    }
    frame.update({f"p_{a}": probs[:, j] for j, a in enumerate(ACTIONS)})
    frame.update({"f_x": rng.normal(size=n), "f_bias": np.ones(n)})
    return pd.DataFrame(frame)


def synthetic_frame(log, names):
    n = log.rewards.size
    frame = {
        "decision_id": [f"s{i}" for i in range(n)],
        "action": np.asarray(names, dtype=object)[log.actions],
        "probability": log.logged_probs,
        "reward": log.rewards,
        "fallback": np.zeros(n, dtype=bool),
    }
    frame.update({f"p_{a}": log.logging_probs[:, j] for j, a in enumerate(names)})
    frame.update({f"f_c{k}": log.contexts[:, k] for k in range(log.contexts.shape[1])})
    return pd.DataFrame(frame)


# ---------------------------------------------------------------- reading
def test_arrays_match_the_frame_and_drops_are_counted(caplog):
    df = make_frame(8)
    df.loc[1, "fallback"] = True
    df.loc[1, "reward"] = np.nan  # a fallback without reward counts as fallback only
    df.loc[4, "reward"] = np.nan
    df.loc[6, "fallback"] = True
    with caplog.at_level("INFO", logger="engine.ope.logs"):
        data = read_log_dataset(df)
    kept = df.drop(index=[1, 4, 6])
    assert data.n == 5 and data.n_read == 8
    assert dict(data.dropped) == {"fallback": 2, "no_reward": 1}
    assert "dropped 2 fallback and 1 without reward" in caplog.text
    assert data.decision_ids == tuple(kept["decision_id"])
    assert data.action_names == ACTIONS
    assert [ACTIONS[a] for a in data.actions] == list(kept["action"])
    np.testing.assert_array_equal(data.rewards, kept["reward"])
    np.testing.assert_array_equal(data.logged_probs, kept["probability"])
    np.testing.assert_array_equal(
        data.eligible, kept[["p_none", "p_coupon_5", "p_recall_message"]] > 0
    )
    assert data.feature_names == ("x", "bias")
    np.testing.assert_array_equal(data.features, kept[["f_x", "f_bias"]])
    assert sum(data.reward_sources.values()) == 5


def test_action_names_select_and_order_the_probability_columns():
    df = make_frame(6)
    data = read_log_dataset(df, action_names=("recall_message", "coupon_5", "none"))
    assert [data.action_names[a] for a in data.actions] == list(df["action"])
    np.testing.assert_array_equal(data.logging_probs[:, 0], df["p_recall_message"])


@pytest.mark.parametrize("column", ["decision_id", "action", "probability", "reward", "fallback"])
def test_missing_column_is_named(column):
    with pytest.raises(ValueError, match=f"no '{column}' column"):
        read_log_dataset(make_frame().drop(columns=column))


def test_missing_probability_columns_are_named():
    df = make_frame()
    with pytest.raises(ValueError, match="no p_<action> columns"):
        read_log_dataset(df.drop(columns=[c for c in df if c.startswith("p_")]))
    with pytest.raises(ValueError, match="no 'p_coupon_20' column"):
        read_log_dataset(df, action_names=("none", "coupon_20"))


def test_inconsistent_rows_are_named():
    df = make_frame(6)
    bad = df.copy()
    bad.loc[[2, 5], "probability"] = 0.9
    with pytest.raises(
        ValueError, match=r"'probability' == 0.9 but 'p_\w+' == .* rows 2, 5 \(decision_id d2, d5\)"
    ):
        read_log_dataset(bad)
    bad = df.copy()
    bad.loc[3, "probability"] = 0.0
    with pytest.raises(ValueError, match=r"'probability' == 0.0 in rows 3 .*must be in \(0, 1\]"):
        read_log_dataset(bad)
    bad = df.copy()
    bad.loc[0, "action"] = "coupon_99"
    with pytest.raises(ValueError, match=r"'action' == 'coupon_99' in rows 0 \(decision_id d0\)"):
        read_log_dataset(bad)
    with pytest.raises(ValueError, match="'action' == 'recall_message'"):
        read_log_dataset(
            df.assign(action="recall_message", probability=df["p_recall_message"]),
            action_names=("none", "coupon_5"),
        )


def test_a_log_with_nothing_to_evaluate_is_an_error():
    df = make_frame(4).assign(reward=np.nan)
    with pytest.raises(
        ValueError, match="no row to evaluate: 4 rows, 0 fallback, 4 without reward"
    ):
        read_log_dataset(df)
    with pytest.raises(ValueError, match="df_or_path is a list"):
        read_log_dataset([1, 2])


def _write_log(path):
    """A real decision log: 3 decisions with rewards, 1 pending, 1 fallback."""
    names = ("none", "coupon_5", "recall_message")
    with DecisionLog(path, durability="sync", salt="test") as log:
        for i in range(5):
            fallback = i == 4
            probs = (1.0, 0.0, 0.0) if fallback else (0.5, 0.3, 0.2)
            action = "none" if fallback or i % 2 == 0 else "coupon_5"
            log.append_decision(
                DecisionRecord(
                    decision_id=f"d{i}",
                    timestamp=1_767_225_600.0 + i,
                    user_hash=f"u{i}",
                    model_version="m",
                    actions=names,
                    probabilities=probs,
                    eligible=("none",) if fallback else names,
                    action=action,
                    fallback=fallback,
                    features={} if fallback else {"x": float(i), "bias": 1.0},
                    payload={},
                )
            )
        for i in range(3):
            log.append_outcome(f"d{i}", 10.0 * (i + 1), 1_767_225_700.0 + i)


def test_reads_a_decision_log_file_and_its_parquet_export(tmp_path):
    path = tmp_path / "decisions.sqlite"
    _write_log(path)
    from_path = read_log_dataset(path)
    from_frame = read_log_dataset(read_log(path))
    from_parquet = read_log_dataset(to_parquet(path, tmp_path / "decisions.parquet"))
    for data in (from_path, from_frame, from_parquet):
        assert data.decision_ids == ("d0", "d1", "d2")
        assert dict(data.dropped) == {"fallback": 1, "no_reward": 1}
        np.testing.assert_allclose(data.rewards, [10.0, 20.0, 30.0])
        np.testing.assert_allclose(data.logged_probs, [0.5, 0.3, 0.5])
        assert data.feature_names == ("bias", "x")
        np.testing.assert_allclose(data.features, [[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    # IPW of "always coupon_5": only d1 was a coupon, 20 / 0.3, averaged over 3 rows
    table = evaluate_decision_log(path, lambda X, names, e: e * [0.0, 1.0, 0.0], estimators=["ipw"])
    assert table.loc["ipw", "value"] == pytest.approx(20.0 / 0.3 / 3)
    assert table.attrs["dropped"] == {"fallback": 1, "no_reward": 1} and table.attrs["n_read"] == 5


# ---------------------------------------------------------------- targets
def test_ipw_and_dr_match_independent_computations():
    df = make_frame(300, seed=3)
    data = read_log_dataset(df)
    rng = np.random.default_rng(9)
    pi = rng.dirichlet(np.ones(3), size=data.n) * data.eligible
    pi /= pi.sum(axis=1, keepdims=True)
    q = rng.normal(2.0, 0.5, size=(data.n, 3))
    table = evaluate_decision_log(
        data, lambda X, names, e: pi, estimated_rewards=q, estimators=["ipw", "snipw", "dr"]
    )
    rows = np.arange(data.n)
    w = pi[rows, data.actions] / df["probability"].to_numpy()
    r = df["reward"].to_numpy()
    assert table.loc["ipw", "value"] == pytest.approx(np.mean(w * r), rel=1e-12)
    assert table.loc["ipw", "se"] == pytest.approx(
        np.std(w * r, ddof=1) / math.sqrt(data.n), rel=1e-9
    )
    assert table.loc["snipw", "value"] == pytest.approx(np.sum(w * r) / np.sum(w), rel=1e-12)
    dr = (pi * q).sum(axis=1) + w * (r - q[rows, data.actions])
    assert table.loc["dr", "value"] == pytest.approx(dr.mean(), rel=1e-12)
    assert table.loc["on-policy", "value"] == pytest.approx(r.mean(), rel=1e-12)


def test_target_mass_on_actions_the_logger_could_not_take_names_the_rows():
    data = read_log_dataset(make_frame(7))  # rows 0, 3, 6 have p_recall_message == 0

    def always_reminder(X, names, e):
        return np.tile([0.0, 0.0, 1.0], (X.shape[0], 1))

    with pytest.raises(
        ValueError,
        match=r"probability 1 on 'recall_message'.*p_recall_message == 0\), "
        r"in rows 0, 3, 6 \(decision_id d0, d3, d6\)",
    ):
        evaluate_decision_log(data, always_reminder)


class ReversedPolicy:
    """An object target whose action order differs from the log's, with an extra action."""

    action_names = ("recall_message", "coupon_20", "coupon_5", "none")

    def feature_probabilities(self, features, feature_names, eligible):
        assert eligible.shape == (features.shape[0], 4)
        self.seen_eligible = eligible.copy()
        out = np.zeros(eligible.shape)
        out[:, 2] = 1.0  # coupon_5, always eligible in these logs
        return out


def test_object_targets_are_matched_to_the_log_by_action_name():
    data = read_log_dataset(make_frame(9))
    target = ReversedPolicy()
    probs = target_probabilities(data, target)
    np.testing.assert_array_equal(probs, np.tile([0.0, 1.0, 0.0], (9, 1)))
    assert not target.seen_eligible[:, 1].any()  # coupon_20 is not in the log: never eligible
    np.testing.assert_array_equal(target.seen_eligible[:, 0], data.eligible[:, 2])
    callable_table = evaluate_decision_log(
        data, lambda X, n, e: np.tile([0.0, 1.0, 0.0], (9, 1)), estimators=["ipw"]
    )
    object_table = evaluate_decision_log(data, target, estimators=["ipw"])
    assert object_table.loc["ipw", "value"] == callable_table.loc["ipw", "value"]


def test_bad_targets_are_refused():
    data = read_log_dataset(make_frame(5))
    with pytest.raises(ValueError, match=r"target returned shape \(5, 2\), must be \(5, 3\)"):
        target_probabilities(data, lambda X, n, e: np.ones((5, 2)) / 2)
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        target_probabilities(data, lambda X, n, e: np.where(e, -1.0, 0.0))
    with pytest.raises(ValueError, match="must be a callable"):
        target_probabilities(data, "rule")

    class CannotDecide:
        def feature_probabilities(self, features, feature_names, eligible):
            raise NotImplementedError("needs the simulator's truth")

    with pytest.raises(
        ValueError, match="cannot be evaluated on a log: needs the simulator's truth"
    ):
        target_probabilities(data, CannotDecide())


def test_target_checks_name_the_bad_rows():
    data = read_log_dataset(make_frame(6))  # rows 0 and 3 cannot get recall_message

    def with_value(row, col, value):
        def target(X, names, eligible):
            out = eligible / eligible.sum(axis=1, keepdims=True)
            out[row, col] = value
            return out

        return target

    for value in (np.nan, np.inf, -np.inf, -0.5):
        with pytest.raises(ValueError, match=r"must be finite and >= 0") as info:
            target_probabilities(data, with_value(4, 1, value))
        assert "rows 4 (decision_id d4)" in str(info.value)
    with pytest.raises(ValueError, match=r"on 'recall_message'.*rows 3 \(decision_id d3\)"):
        target_probabilities(data, with_value(3, 2, 0.25))
    tiny = target_probabilities(data, with_value(3, 2, 1e-10))  # below MASS_TOLERANCE: kept
    assert tiny[3, 2] == 1e-10


def test_target_output_is_returned_as_a_copy_in_log_order():
    data = read_log_dataset(make_frame(6))
    returned = np.tile([0.2, 0.8, 0.0], (6, 1))
    probs = target_probabilities(data, lambda X, names, eligible: returned)
    np.testing.assert_array_equal(probs, returned)
    assert probs is not returned
    seen = []
    target_probabilities(data, lambda X, names, eligible: seen.append(eligible) or returned)
    assert seen[0] is not data.eligible
    np.testing.assert_array_equal(seen[0], data.eligible)


# ---------------------------------------------------------------- features and the reward model
def test_missing_features_get_zero_and_an_indicator():
    X = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, 4.0], [3.0, np.nan, 5.0]])
    out = reward_model_features(X)
    np.testing.assert_array_equal(out, [[1, 0, 3, 1], [2, 5, 4, 0], [3, 0, 5, 1]])
    full = np.arange(6.0).reshape(3, 2)
    assert reward_model_features(full) is full


def test_features_absent_from_every_kept_row_are_dropped():
    df = make_frame(6).assign(f_cf_score=np.nan)
    assert read_log_dataset(df).feature_names == ("x", "bias")


def test_without_feature_columns_only_weighting_estimators_run():
    df = make_frame(40).drop(columns=["f_x", "f_bias"])
    table = evaluate_decision_log(df, lambda X, n, e: e / e.sum(axis=1, keepdims=True))
    assert list(table.index) == ["ipw", "snipw", "on-policy"]


def test_estimates_cover_the_exact_value_of_a_synthetic_world():
    """SyntheticWorld knows the target's exact value; the log path must recover it (4 se)."""
    world = SyntheticWorld.make(n_actions=4, seed=5)
    log = world.sample(20_000, np.random.default_rng(6))
    names = ("a0", "a1", "a2", "a3")
    df = synthetic_frame(log, names)
    df.loc[::50, "reward"] = np.nan  # pending rewards are dropped (at random: no bias)
    keep = df["reward"].notna().to_numpy()
    pi = log.target_probs[keep]
    table = evaluate_decision_log(df, lambda X, n, e: pi, seed=0)
    assert table.attrs["dropped"]["no_reward"] == 400
    for est in ("ipw", "snipw", "dr", "sndr"):
        value, se = table.loc[est, ["value", "se"]]
        assert abs(value - log.true_value) <= 4 * se, (est, value, log.true_value, se)
    # DR with the cross-fitted logistic model is at least as precise as IPW here
    assert table.loc["dr", "se"] <= table.loc["ipw", "se"]


def test_doctests():
    result = doctest.testmod(ope_logs, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
