"""Many threads appending decisions and rewards concurrently: each stored exactly once."""

import sqlite3
import threading

import pytest

from engine.decision_log import DecisionLog, DecisionRecord, OutcomeStatus

ACTIONS = ("none", "coupon_5", "coupon_10", "recall_message")
N_THREADS = 8
PER_THREAD = 2000
DUPLICATE_EVERY = 10


def reward_of(thread, i):
    return float(thread * 10_000 + i)


def worker(log, thread, barrier, receipts):
    barrier.wait()
    for i in range(PER_THREAD):
        did = f"t{thread}-{i}"
        log.append_decision(DecisionRecord(
            timestamp=1000.0 + i, user_hash=f"user{thread}", model_version="m1", actions=ACTIONS,
            probabilities=(0.4, 0.2, 0.2, 0.2), eligible=ACTIONS, action=ACTIONS[i % 4],
            features={"i": float(i), "thread": float(thread)}, decision_id=did,
        ))
        receipts.append(log.append_outcome(did, reward_of(thread, i), 1001.0 + i).status)
        if i % DUPLICATE_EVERY == 0:  # a second reward for the same decision: must lose
            receipts.append(log.append_outcome(did, -1.0, 1002.0 + i).status)


@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_threads_store_every_decision_and_first_reward_exactly_once(tmp_path, durability):
    path = tmp_path / f"{durability}.db"
    receipts: list[OutcomeStatus] = []
    with DecisionLog(path, durability=durability) as log:
        barrier = threading.Barrier(N_THREADS)
        threads = [threading.Thread(target=worker, args=(log, k, barrier, receipts)) for k in range(N_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.flush()
        health = log.health()

    total = N_THREADS * PER_THREAD
    n_dupes = N_THREADS * (PER_THREAD // DUPLICATE_EVERY)
    assert receipts.count(OutcomeStatus.ACCEPTED) == total
    assert receipts.count(OutcomeStatus.DUPLICATE) == n_dupes
    conn = sqlite3.connect(path)
    decisions = conn.execute("SELECT decision_id, user_hash, action FROM decisions").fetchall()
    outcomes = dict(conn.execute("SELECT decision_id, reward FROM outcomes").fetchall())
    conn.close()
    expected = {(f"t{k}-{i}", f"user{k}", ACTIONS[i % 4]) for k in range(N_THREADS) for i in range(PER_THREAD)}
    assert len(decisions) == total and set(decisions) == expected
    assert outcomes == {f"t{k}-{i}": reward_of(k, i) for k in range(N_THREADS) for i in range(PER_THREAD)}
    assert health["written_decisions"] == total and health["written_outcomes"] == total
    assert health["duplicates"] == n_dupes
    assert health["failed_writes"] == health["dropped_events"] == health["memory_fallback_events"] == 0
    if durability == "sync":
        # group commit: concurrent callers share transactions
        assert health["commits"] < 2 * total
