"""The writer's array path writes exactly what the record path wrote.

For the same engine decisions, :func:`prepare_batch` (rows built from plain values after array
checks) and the record path (:meth:`EngineDecision.to_record`, then
:func:`~engine.decision_log.store_rows.decision_rows`) must give equal rows (same values, same
Python types, same blobs), the same vocabularies, the same tables in SQLite and in PostgreSQL,
and reject the same decisions with the same reasons.
"""

import sqlite3

import numpy as np
import pytest
from pg_support import create_schema, drop_schema, schema_url

from engine import DecisionEngine
from engine.decision_log import DecisionRecord
from engine.decision_log.engine_batch import PreparedDecision, prepare_batch
from engine.decision_log.engine_decision import new_engine_decision
from engine.decision_log.records import OutcomeRecord
from engine.decision_log.store_api import open_store
from engine.decision_log.store_rows import decision_rows

WINDOW = 72 * 3600.0
ACTIONS = ("none", "coupon_5", "coupon_10", "recall_message")
NAMES = ("cart_value", "items", "bias")
OTHER_ACTIONS = ("none", "coupon_5")
OTHER_NAMES = ("x0", "x1", "x2", "x3", "x4")


def entry(decision_id, probs, mask, action, x, payload=None, actions=ACTIONS, names=NAMES):
    return new_engine_decision(
        (
            decision_id,
            1_767_225_600.0 + len(decision_id),
            f"h-{decision_id}",
            "m1",
            actions,
            list(probs),
            list(mask),
            action,
            names,
            np.asarray(x, dtype=np.float64),
            {} if payload is None else payload,
        )
    )


def random_entries(seed: int, n: int) -> list:
    """Valid entries over two catalogues / feature layouts, random masks, values and payloads."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        actions, names = (ACTIONS, NAMES) if i % 3 else (OTHER_ACTIONS, OTHER_NAMES)
        mask = rng.random(len(actions)) < 0.7
        mask[rng.integers(len(actions))] = True
        weights = np.where(mask, rng.random(len(actions)) + 0.01, 0.0)
        probs = (weights / weights.sum()).tolist()
        action = int(rng.choice(np.flatnonzero(mask)))
        x = rng.normal(0.0, 10.0 ** rng.integers(-3, 6), len(names))
        payloads = [
            {},
            {"channel": "email", "coupon_percent": 5},
            {"items": ["i1", "é", 'q"uote'], "n": -3, "score": float(rng.random())},
        ]
        out.append(
            entry(f"d{i}", probs, mask, action, x, payloads[i % 3], actions=actions, names=names)
        )
    return out


def edge_entries() -> list:
    """Entries the array checks must leave to the record path: valid and invalid ones."""
    p = [0.25, 0.25, 0.5, 0.0]
    m = [True, True, True, False]
    x = [59.9, 2.0, 1.0]
    return [
        entry("sum-near-tol", [0.25, 0.25, 0.5 + 8e-7, 0.0], m, 1, x),  # valid by fsum
        entry("sum-off", [0.25, 0.25, 0.5 + 2e-6, 0.0], m, 1, x),
        entry("negative", [0.5, 0.75, -0.25, 0.0], m, 1, x),
        entry("ineligible-mass", [0.25, 0.25, 0.25, 0.25], m, 1, x),
        entry("zero-at-action", [0.5, 0.0, 0.5, 0.0], m, 1, x),
        entry("nan-prob", [0.25, float("nan"), 0.5, 0.0], m, 1, x),
        entry("inf-feature", p, m, 1, [np.inf, 2.0, 1.0]),
        entry("nan-feature", p, m, 1, [np.nan, 2.0, 1.0]),
        entry("too-big-feature", p, m, 1, [1e39, 2.0, 1.0]),
        entry("float32-max", p, m, 1, [3.4028234663852886e38, -1e-45, 0.0]),
        entry("nan-payload", p, m, 1, x, {"v": float("nan")}),
        entry("set-payload", p, m, 1, x, {"v": {1, 2}}),
        entry("numpy-payload", p, m, 1, x, {"v": np.int64(3)}),
        entry("negative-zero", [0.25, 0.25, 0.5, -0.0], m, 1, x, {"f": -0.0}),
        entry("int-probs", [0, 1, 0, 0], m, 1, x),
    ]


def record_path(events):
    """The old writer path: a record per engine decision (or the reason it is invalid)."""
    out, invalid = [], []
    for event in events:
        if type(event) is DecisionRecord or type(event) is OutcomeRecord:
            out.append(event)
            continue
        try:
            out.append(event.to_record())
        except ValueError as exc:
            invalid.append((event.decision_id, str(exc)))
    return out, invalid


def typed(rows):
    return [tuple((type(v), v) for v in row) for row in rows]


def decisions_of(events):
    return [e for e in events if type(e) is not OutcomeRecord]


def engine_entries(tmp_path, n=300):
    """What a real engine (VW, CF payloads) hands its log for ``n`` simulated carts."""
    from env_contexts import simulator_contexts

    from engine.cf import CFModel, interactions_from_contexts

    contexts = simulator_contexts(n, seed=3)
    cf = CFModel(n_factors=4).fit(interactions_from_contexts(contexts))
    eng = DecisionEngine(store=str(tmp_path / "cap.db"), seed=0, learner="vw", cf=cf)
    captured = []
    eng.log.append_engine_decision = captured.append
    for ctx in contexts:
        eng.decide(ctx)
    eng.close()
    return captured


@pytest.mark.parametrize("source", ["random", "engine", "edges"])
def test_rows_equal_the_record_paths(tmp_path, source):
    if source == "random":
        events = random_entries(seed=7, n=400)
    elif source == "engine":
        events = engine_entries(tmp_path)
    else:
        events = edge_entries() + random_entries(seed=8, n=20)
    # records and outcomes appended by other callers pass through unchanged, in order
    extra = DecisionRecord(
        timestamp=5.0,
        user_hash="h",
        model_version="m0",
        actions=OTHER_ACTIONS,
        probabilities=(0.5, 0.5),
        eligible=OTHER_ACTIONS,
        action="none",
        decision_id="appended",
    )
    outcome = OutcomeRecord("d1", 9.0, 1.0)
    events = [*events[:5], extra, outcome, *events[5:]]

    new, built, invalid = prepare_batch(list(events), WINDOW)
    old, old_invalid = record_path(events)

    assert [(e.decision_id, reason) for e, reason in invalid] == old_invalid
    assert [e.decision_id for e in new] == [e.decision_id for e in old]
    assert sum(e is extra for e in new) == 1 and sum(e is outcome for e in new) == 1
    new_rows, new_vocab = decision_rows(decisions_of(new), WINDOW, set())
    old_rows, old_vocab = decision_rows(decisions_of(old), WINDOW, set())
    assert typed(new_rows) == typed(old_rows)
    assert list(new_vocab.items()) == list(old_vocab.items())
    n_prepared = sum(type(e) is PreparedDecision for e in new)
    if source == "edges":  # edge cases took the record path, but for three valid ones
        on_array_path = {"float32-max", "negative-zero", "int-probs"}
        assert {e.decision_id for e, _ in built} | {i for i, _ in old_invalid} == {
            e.decision_id for e in edge_entries()
        } - on_array_path
        assert on_array_path <= {e.decision_id for e in new if type(e) is PreparedDecision}
        assert len(old_invalid) == 11
    else:  # valid decisions all take the array path
        assert n_prepared == len(events) - 2 and not built and not invalid


def test_sqlite_tables_are_identical(tmp_path):
    events = random_entries(seed=11, n=300) + edge_entries()
    new, _, _ = prepare_batch(list(events), WINDOW)
    old, _ = record_path(events)
    dumps = []
    for name, batch in (("new", new), ("old", old)):
        store = open_store(str(tmp_path / f"{name}.db"), durability="batch")
        store.open()
        # two commits: the second finds its vocabularies stored already
        assert store.write(decisions_of(batch)[:100], [], WINDOW) == (100, 0)
        assert store.write(decisions_of(batch)[100:], [], WINDOW)[0] == len(batch) - 100
        store.close()
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            dumps.append(
                (
                    conn.execute("SELECT * FROM decisions ORDER BY rowid").fetchall(),
                    conn.execute("SELECT * FROM vocabularies ORDER BY vocab_id").fetchall(),
                )
            )
    assert dumps[0] == dumps[1] and len(dumps[0][0]) == 300 + 4


@pytest.mark.postgres
def test_postgresql_tables_are_identical():
    import psycopg

    events = random_entries(seed=12, n=200) + edge_entries()
    new, _, _ = prepare_batch(list(events), WINDOW)
    old, _ = record_path(events)
    dumps = []
    for batch in (new, old):
        schema = create_schema("eb")
        try:
            url = schema_url(schema)
            store = open_store(url, durability="batch")
            store.open()
            assert store.write(decisions_of(batch), [], WINDOW)[0] == len(batch)
            store.close()
            with psycopg.connect(url) as conn:
                dumps.append(
                    (
                        conn.execute(
                            "SELECT decision_id, timestamp, user_hash, model_version, action,"
                            " action_index, probability, action_set, probabilities, eligible,"
                            " feature_set, features, payload, fallback, window_closes"
                            " FROM decisions ORDER BY decision_id"
                        ).fetchall(),
                        conn.execute("SELECT * FROM vocabularies ORDER BY vocab_id").fetchall(),
                    )
                )
        finally:
            drop_schema(schema)
    assert dumps[0] == dumps[1] and len(dumps[0][0]) == 200 + 4
