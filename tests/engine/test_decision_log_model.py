"""Random sequences of appends, outcomes and flushes against a plain-Python model of the rules:
first outcome wins, unknown ids are ignored, user outcomes go to the most recent decision whose
window [t, t + W) contains them (latest appended on ties), committed or still buffered."""

import sqlite3

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.decision_log import DecisionLog, DecisionRecord, OutcomeStatus

W = 10.0
ACTIONS = ("none", "coupon_5")

decide = st.tuples(st.just("decide"), st.sampled_from("ab"), st.integers(0, 6))
reward = st.tuples(st.just("reward"), st.integers(0, 25), st.integers(0, 16))
order = st.tuples(st.just("order"), st.sampled_from("abc"), st.integers(0, 16))
flush = st.tuples(st.just("flush"), st.none(), st.none())
operations = st.lists(st.one_of(decide, decide, reward, order, flush), max_size=40)


class Model:
    def __init__(self):
        self.decisions: list[tuple[str, str, float]] = []  # (id, user, t) in append order
        self.outcomes: dict[str, float] = {}

    def reward(self, did, value):
        if did not in {d for d, _, _ in self.decisions}:
            return OutcomeStatus.UNKNOWN
        if did in self.outcomes:
            return OutcomeStatus.DUPLICATE
        self.outcomes[did] = value
        return OutcomeStatus.ACCEPTED

    def order(self, user, t, value):
        best = None
        for did, u, td in self.decisions:  # later entries win ties
            if u == user and td <= t < td + W and (best is None or td >= best[1]):
                best = (did, td)
        if best is None:
            return None, OutcomeStatus.UNATTRIBUTED
        return best[0], self.reward(best[0], value)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
@example(ops=[("decide", "a", 3), ("decide", "a", 3), ("order", "a", 5)])  # tie, buffered
@example(
    ops=[("decide", "a", 3), ("decide", "a", 3), ("flush", None, None), ("order", "a", 5)]
)  # tie, stored
@example(
    ops=[
        ("decide", "a", 3),
        ("flush", None, None),
        ("decide", "a", 3),
        ("order", "a", 5),
        ("order", "a", 6),
        ("reward", 0, 7),
        ("reward", 1, 7),
    ]
)  # tie across the two
def test_log_agrees_with_reference_model(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("model") / "log.db"
    model = Model()
    with DecisionLog(path, attribution_window=W, flush_interval=30.0, flush_events=10**6) as log:
        for step, (kind, key, t) in enumerate(ops):
            value = float(step)
            if kind == "decide":
                did = f"d{len(model.decisions)}"
                log.append_decision(
                    DecisionRecord(
                        timestamp=float(t),
                        user_hash=key,
                        model_version="m",
                        actions=ACTIONS,
                        probabilities=(0.5, 0.5),
                        eligible=ACTIONS,
                        action="none",
                        decision_id=did,
                    )
                )
                model.decisions.append((did, key, float(t)))
            elif kind == "reward":
                did = f"d{key}"
                assert log.append_outcome(did, value, float(t)).status is model.reward(did, value)
            elif kind == "order":
                receipt = log.outcome_for_user(key, value, float(t), hashed=True)
                expected_id, expected_status = model.order(key, float(t), value)
                assert (receipt.decision_id, receipt.status) == (expected_id, expected_status)
            else:
                assert log.flush()
    conn = sqlite3.connect(path)
    try:
        stored = dict(conn.execute("SELECT decision_id, reward FROM outcomes").fetchall())
        n_decisions = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    finally:
        conn.close()
    assert stored == model.outcomes
    assert n_decisions == len(model.decisions)
