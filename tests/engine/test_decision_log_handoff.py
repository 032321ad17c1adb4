"""The engine hands the log plain values; the writer thread builds the record.

An outcome (by decision id or by user) must join a decision at every point between ``decide``
and the commit: still in the writer's queue, taken by the writer but not yet built, built but
not yet committed, committed.
"""

import logging
import threading

import numpy as np

from engine import DecisionEngine
from engine.decision_log import DecisionLog, read_log
from engine.decision_log.engine_decision import EngineDecision, new_engine_decision

ACTIONS = ("none", "coupon_5", "recall_message")
NAMES = ("cart_value", "bias")


def entry(decision_id, user="h1", ts=1767225600.0, probs=(0.5, 0.5, 0.0), action=1, x=(59.9, 1.0)):
    return new_engine_decision(
        (
            decision_id,
            ts,
            user,
            "m1",
            ACTIONS,
            list(probs),
            [p > 0 for p in probs],
            action,
            NAMES,
            np.array(x, dtype=np.float64),
            {"channel": "email", "coupon_percent": 5} if action == 1 else {},
        )
    )


class PausedPrepare:
    """Wraps a log's ``_prepare`` so that the writer stops before and after building records."""

    def __init__(self, log):
        self.inner = log._prepare
        self.taken = threading.Event()  # the writer took a batch from the queue
        self.go_build = threading.Event()
        self.built = threading.Event()  # rows (or records) built, not committed
        self.go_commit = threading.Event()
        log._writer._prepare = self

    def __call__(self, events):
        self.taken.set()
        assert self.go_build.wait(10)
        out = self.inner(events)
        self.built.set()
        assert self.go_commit.wait(10)
        return out


def test_entry_builds_the_record_the_validating_constructor_would():
    rec = entry("d1").to_record()
    assert (rec.action, rec.probability, rec.eligible) == ("coupon_5", 0.5, ("none", "coupon_5"))
    assert dict(rec.features) == {"cart_value": float(np.float32(59.9)), "bias": 1.0}
    assert rec.payload_json == '{"channel":"email","coupon_percent":5}'


def test_outcomes_join_a_decision_at_every_stage_before_its_commit(tmp_path):
    log = DecisionLog(tmp_path / "log.db", salt="s")
    paused = PausedPrepare(log)
    log.append_engine_decision(entry("queued", user="u-queued"))
    # stage 1: in the queue (the writer starts once the oldest event is 25 ms old)
    assert log.append_outcome("queued", 1.0, 1767225601.0).accepted
    assert paused.taken.wait(10)
    # stage 2: taken by the writer, record not built yet; the index still has the entry
    log.append_engine_decision(entry("early", user="u-early"))  # goes to the next batch
    assert isinstance(log._pending._decisions["queued"], EngineDecision)
    assert log.get_decision("queued").action == "coupon_5"
    assert log.outcome_for_user("u-early", 2.0, 1767225602.0, hashed=True).decision_id == "early"
    paused.go_build.set()
    assert paused.built.wait(10)
    # stage 3: row built (the index keeps the entry until the commit), not committed
    assert log.get_decision("queued").action == "coupon_5"
    assert log.append_outcome("queued", 9.0, 1767225603.0).status.value == "duplicate"
    paused.go_commit.set()
    assert log.flush()
    # stage 4: committed; a late duplicate is still recognised
    assert log.append_outcome("early", 3.0, 1767225604.0).status.value == "duplicate"
    frame = read_log(log.path)
    log.close()
    rewards = dict(zip(frame["decision_id"], frame["reward"], strict=True))
    assert rewards == {"queued": 1.0, "early": 2.0}
    assert log.health()["pending_decisions"] == 0 and log.health()["invalid_decisions"] == 0


def test_an_invalid_entry_is_counted_and_logged_and_the_rest_of_the_batch_is_stored(
    tmp_path, caplog
):
    log = DecisionLog(tmp_path / "log.db", salt="s")
    log.append_engine_decision(entry("good-1"))
    log.append_engine_decision(entry("bad", x=(np.inf, 1.0)))  # float32 cannot hold it
    log.append_engine_decision(entry("good-2"))
    with caplog.at_level(logging.ERROR, logger="engine.decision_log.log"):
        assert log.flush()
    assert "decision bad not logged" in caplog.text and "features['cart_value']" in caplog.text
    assert log.health()["invalid_decisions"] == 1 and log.health()["pending_decisions"] == 0
    assert log.append_outcome("bad", 1.0, 1767225601.0).status.value == "unknown"
    assert sorted(read_log(log.path)["decision_id"]) == ["good-1", "good-2"]
    log.close()


def test_engine_rewards_before_the_commit_are_learned_and_joined_in_the_log(tmp_path):
    eng = DecisionEngine(tmp_path / "log.db", seed=0, learner="linucb", salt="s")
    paused = PausedPrepare(eng.log)
    ctx = {
        "user_id": "u1",
        "timestamp": 1767225600.0,
        "cart": [{"item_id": "i1", "price": 40.0, "quantity": 1}],
        "channels": {"email": True, "sms": False, "push": False},
    }
    first = eng.decide(ctx)
    assert eng.reward(first.decision_id, 5.0, 1767225601.0)  # still queued
    assert paused.taken.wait(10)
    second = eng.decide({**ctx, "user_id": "u2"})
    assert eng.outcome("u2", 7.0, 1767225602.0) == second.decision_id
    paused.go_build.set()
    paused.go_commit.set()
    eng.flush()
    frame = read_log(eng.log.path).set_index("decision_id")
    assert frame.loc[first.decision_id, "reward"] == 5.0
    assert frame.loc[second.decision_id, "reward"] == 7.0
    assert frame.loc[first.decision_id, "probability"] == first.probability
    assert eng.health()["rewards_learned"] == 2
    eng.close()
