"""Readers and exports: pandas frame, Parquet, and DSJSON that Vowpal Wabbit itself parses."""

import json

import numpy as np
import pandas as pd
import pytest
import vowpalwabbit

from engine.decision_log import DecisionLog, DecisionRecord, read_log, to_dsjson, to_parquet

ACTIONS = ("none", "recommendation", "coupon_5", "coupon_10", "time_limited_offer")
N = 300


def synthetic_log(path, seed=7):
    """Random decisions (random eligibility, probabilities, features), rewards for 2/3 of them."""
    rng = np.random.default_rng(seed)
    records, rewards = [], {}
    with DecisionLog(path, attribution_window=1e6) as log:
        for i in range(N):
            eligible_mask = rng.random(len(ACTIONS)) < 0.7
            eligible_mask[0] = True
            weights = np.where(eligible_mask, rng.random(len(ACTIONS)) + 0.05, 0.0)
            if i % 10 == 0:  # a greedy-like policy: an eligible action with probability 0
                weights[np.flatnonzero(eligible_mask)[-1]] = (
                    0.0 if eligible_mask.sum() > 1 else weights[0]
                )
            probs = weights / weights.sum()
            chosen = int(rng.choice(len(ACTIONS), p=probs))
            features = {
                "cart_value": float(rng.gamma(2.0, 30.0)),
                "hour": float(rng.integers(0, 24)),
            }
            if i % 2:
                features["views"] = float(rng.integers(0, 50))
            rec = DecisionRecord(
                timestamp=1_767_225_600.0 + 60 * i,
                user_hash=f"h{i % 40}",
                model_version=f"m{i // 150}",
                actions=ACTIONS,
                probabilities=probs,
                eligible=tuple(a for a, ok in zip(ACTIONS, eligible_mask, strict=True) if ok),
                action=ACTIONS[chosen],
                features=features,
                payload={"i": i, "tags": ["x"]},
                fallback=bool(i % 7 == 0),
                decision_id=f"d{i:04d}",
            )
            log.append_decision(rec)
            records.append(rec)
            if i % 3:
                rewards[rec.decision_id] = float(np.round(rng.normal(2.0, 5.0), 3))
                log.append_outcome(
                    rec.decision_id, rewards[rec.decision_id], rec.timestamp + 30, order_id=f"o{i}"
                )
    return records, rewards


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "log.db"
    records, rewards = synthetic_log(path)
    return path, records, rewards


def test_read_log_reproduces_every_record(logged):
    path, records, rewards = logged
    df = read_log(path)
    assert len(df) == N and df["decision_id"].tolist() == [r.decision_id for r in records]
    for rec, row in zip(records, df.itertuples(index=False), strict=True):
        assert row.user_hash == rec.user_hash and row.model_version == rec.model_version
        assert row.action == rec.action and row.action_index == rec.action_index
        assert row.probability == rec.probability and row.probabilities == list(rec.probabilities)
        assert row.eligible == list(rec.eligible) and row.actions == list(ACTIONS)
        assert row.features.keys() == rec.features.keys()
        np.testing.assert_allclose(
            list(row.features.values()), list(rec.features.values()), rtol=1e-7
        )
        assert row.payload == rec.payload and row.fallback == rec.fallback
        assert row.window_closes == rec.timestamp + 1e6
        if rec.decision_id in rewards:
            assert (row.reward, row.reward_source, row.order_id) == (
                rewards[rec.decision_id],
                "reward",
                f"o{int(rec.decision_id[1:])}",
            )
        else:
            assert np.isnan(row.reward) and pd.isna(row.reward_source) and pd.isna(row.order_id)


def test_wide_columns_match_the_vectors(logged):
    path, records, _ = logged
    df = read_log(path)
    p = df[[f"p_{a}" for a in ACTIONS]].to_numpy()
    np.testing.assert_array_equal(p, np.array([r.probabilities for r in records]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert sorted(c for c in df.columns if c.startswith("f_")) == [
        "f_cart_value",
        "f_hour",
        "f_views",
    ]
    views = df["f_views"].to_numpy()
    assert np.isnan(views[::2]).all() and not np.isnan(views[1::2]).any()
    np.testing.assert_allclose(
        df["f_cart_value"], [r.features["cart_value"] for r in records], rtol=1e-7
    )


def test_read_log_time_filter_and_empty_log(logged, tmp_path):
    path, records, _ = logged
    part = read_log(path, since=records[10].timestamp, until=records[20].timestamp)
    assert part["decision_id"].tolist() == [r.decision_id for r in records[10:20]]
    DecisionLog(tmp_path / "empty.db").close()
    empty = read_log(tmp_path / "empty.db")
    assert len(empty) == 0 and list(empty.columns[:3]) == ["decision_id", "timestamp", "user_hash"]
    with pytest.raises(FileNotFoundError, match="no decision log"):
        read_log(tmp_path / "missing.db")


def test_mixed_catalogues_fill_absent_actions_with_zero(tmp_path):
    with DecisionLog(tmp_path / "mix.db") as log:
        log.append_decision(
            DecisionRecord(
                timestamp=1.0,
                user_hash="h",
                model_version="m",
                actions=("a", "b"),
                probabilities=(0.5, 0.5),
                eligible=("a", "b"),
                action="a",
            )
        )
        log.append_decision(
            DecisionRecord(
                timestamp=2.0,
                user_hash="h",
                model_version="m",
                actions=("a", "c"),
                probabilities=(0.2, 0.8),
                eligible=("a", "c"),
                action="c",
            )
        )
    df = read_log(tmp_path / "mix.db")
    assert df[["p_a", "p_b", "p_c"]].to_numpy().tolist() == [[0.5, 0.5, 0.0], [0.2, 0.0, 0.8]]


def test_parquet_round_trip(logged, tmp_path):
    path, _, _ = logged
    out = to_parquet(path, tmp_path / "log.parquet")
    back = pd.read_parquet(out)
    df = read_log(path)
    assert list(back.columns) == list(df.columns)
    scalar = [
        c
        for c in df.columns
        if c not in ("actions", "eligible", "probabilities", "features", "payload")
    ]
    pd.testing.assert_frame_equal(back[scalar], df[scalar], check_dtype=False)
    assert [json.loads(p) for p in back["payload"]] == df["payload"].tolist()
    assert [dict(f) for f in back["features"]] == df["features"].tolist()
    assert [list(p) for p in back["probabilities"]] == df["probabilities"].tolist()


def small_log(path, *, order_ids: bool, feature: str):
    """Five decisions with feature ``feature`` and a reward each (with or without order ids)."""
    with DecisionLog(path, attribution_window=1e6) as log:
        for i in range(5):
            log.append_decision(
                DecisionRecord(
                    timestamp=100.0 + i,
                    user_hash="h",
                    model_version="m",
                    actions=("none", "coupon_5"),
                    probabilities=(0.25, 0.75),
                    eligible=("none", "coupon_5"),
                    action="coupon_5",
                    features={feature: float(i)},
                    decision_id=f"{path.stem}-{i}",
                )
            )
            log.append_outcome(
                f"{path.stem}-{i}", 1.5, 200.0 + i, order_id=f"o{i}" if order_ids else None
            )


def test_parquet_exports_combine_into_one_dataset(tmp_path):
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    small_log(tmp_path / "orders.db", order_ids=True, feature="views")
    small_log(tmp_path / "no_orders.db", order_ids=False, feature="hour")
    DecisionLog(tmp_path / "empty.db").close()
    out = tmp_path / "exports"
    out.mkdir()
    names = ["orders", "no_orders", "empty"]
    files = [
        to_parquet(tmp_path / f"{name}.db", out / f"{k}_{name}.parquet")
        for k, name in enumerate(names)
    ]
    frames = [read_log(tmp_path / f"{name}.db") for name in names]
    schemas = [pq.read_schema(f) for f in files]
    for (
        schema
    ) in schemas:  # same core types whatever the rows (order_id was null-typed without ids)
        assert (
            schema.field("order_id").type == pa.string()
            and schema.field("reward").type == pa.float64()
        )
        assert schema.field("features").type == pa.map_(pa.string(), pa.float64())
    assert (
        len({schema.remove_metadata().to_string() for schema in schemas[:2]}) == 2
    )  # f_views vs f_hour

    # pandas: one frame, with the first file's columns
    both = pd.read_parquet(out)
    assert list(both.columns) == list(frames[0].columns)
    assert both["decision_id"].tolist() == [f"orders-{i}" for i in range(5)] + [
        f"no_orders-{i}" for i in range(5)
    ]
    assert (
        both["order_id"].tolist()[:5] == [f"o{i}" for i in range(5)]
        and both["order_id"][5:].isna().all()
    )
    assert both["reward"].tolist() == [1.5] * 10
    np.testing.assert_array_equal(both["f_views"], [0.0, 1.0, 2.0, 3.0, 4.0] + [np.nan] * 5)

    # pyarrow.dataset over the union of the schemas: every column of every file
    table = ds.dataset(out, format="parquet", schema=pa.unify_schemas(schemas)).to_table()
    assert table.num_rows == 10
    assert table.column("order_id").to_pylist() == [f"o{i}" for i in range(5)] + [None] * 5
    assert table.column("f_hour").to_pylist() == [None] * 5 + [0.0, 1.0, 2.0, 3.0, 4.0]
    assert table.column("p_coupon_5").to_pylist() == [0.75] * 10
    assert [dict(f) for f in table.column("features").to_pylist()] == (
        [{"views": float(i)} for i in range(5)] + [{"hour": float(i)} for i in range(5)]
    )


def test_parquet_schema_refuses_unknown_columns():
    from engine.decision_log.export import parquet_schema

    with pytest.raises(ValueError, match="column 'score' is not a decision-log column"):
        parquet_schema(["decision_id", "score"])


def test_dsjson_lines_are_parsed_by_vowpal_wabbit_with_matching_labels(logged, tmp_path):
    path, records, rewards = logged
    out = tmp_path / "log.dsjson"
    assert to_dsjson(path, out) == len(rewards)
    by_id = {r.decision_id: r for r in records}
    lines = out.read_text().splitlines()
    assert len(lines) == len(rewards)
    vw = vowpalwabbit.Workspace("--cb_explore_adf --dsjson --quiet -q fa")
    try:
        for line in lines:
            event = json.loads(line)
            rec = by_id[event["EventId"]]
            examples = vw.parse(line)
            shared, actions = examples[0], examples[1:]
            assert len(actions) == len(rec.eligible)
            labels = [a.get_label(vowpalwabbit.LabelType.CONTEXTUAL_BANDIT).costs for a in actions]
            labelled = [i for i, costs in enumerate(labels) if costs]
            chosen = rec.eligible.index(rec.action)  # eligible are in catalogue order
            assert labelled == [chosen] == [event["_labelIndex"]]
            label = labels[chosen][0]
            assert label.cost == pytest.approx(-rewards[rec.decision_id], rel=1e-6)
            assert label.probability == pytest.approx(rec.probability, rel=1e-6)
            assert label.action == chosen + 1 == event["_label_Action"]
            assert event["a"][0] == chosen + 1 and sorted(event["a"]) == list(
                range(1, len(actions) + 1)
            )
            assert event["p"] == [
                rec.probabilities[ACTIONS.index(rec.eligible[a - 1])] for a in event["a"]
            ]
            assert (
                shared.get_label(vowpalwabbit.LabelType.CONTEXTUAL_BANDIT).costs[0].probability
                == -1.0
            )
            vw.learn(examples)
            vw.finish_example(examples)
    finally:
        vw.finish()

    # VW's own file reader on the whole export
    vw = vowpalwabbit.Workspace(f"--cb_explore_adf --dsjson -d {out} --quiet")
    try:
        vw.run_parser()
        assert vw.get_weighted_examples() == len(rewards)
    finally:
        vw.finish()


def test_dsjson_rejects_namespaces_vw_would_treat_as_special(logged, tmp_path):
    path, _, _ = logged
    with pytest.raises(ValueError, match="shared_namespace == '_x'"):
        to_dsjson(path, tmp_path / "x.json", shared_namespace="_x")
