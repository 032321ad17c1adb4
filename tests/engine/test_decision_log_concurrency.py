"""Many threads appending decisions and rewards concurrently: each stored exactly once
(SQLite file and PostgreSQL store)."""

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
        log.append_decision(
            DecisionRecord(
                timestamp=1000.0 + i,
                user_hash=f"user{thread}",
                model_version="m1",
                actions=ACTIONS,
                probabilities=(0.4, 0.2, 0.2, 0.2),
                eligible=ACTIONS,
                action=ACTIONS[i % 4],
                features={"i": float(i), "thread": float(thread)},
                decision_id=did,
            )
        )
        receipts.append(log.append_outcome(did, reward_of(thread, i), 1001.0 + i).status)
        if i % DUPLICATE_EVERY == 0:  # a second reward for the same decision: must lose
            receipts.append(log.append_outcome(did, -1.0, 1002.0 + i).status)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request):
    return request.param


def stored(backend, target):
    """(decision rows, {decision_id: reward}) read back from the store."""
    if backend == "sqlite":
        conn = sqlite3.connect(target)
    else:
        import psycopg

        conn = psycopg.connect(target)
    try:
        decisions = conn.execute("SELECT decision_id, user_hash, action FROM decisions").fetchall()
        outcomes = dict(conn.execute("SELECT decision_id, reward FROM outcomes").fetchall())
    finally:
        conn.close()
    return decisions, outcomes


@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_threads_store_every_decision_and_first_reward_exactly_once(
    request, tmp_path, backend, durability
):
    target = (
        tmp_path / f"{durability}.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    )
    receipts: list[OutcomeStatus] = []
    with DecisionLog(
        target, durability=durability, spill_dir=tmp_path / "spill" if backend != "sqlite" else None
    ) as log:
        barrier = threading.Barrier(N_THREADS)
        threads = [
            threading.Thread(target=worker, args=(log, k, barrier, receipts))
            for k in range(N_THREADS)
        ]
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
    decisions, outcomes = stored(backend, target)
    expected = {
        (f"t{k}-{i}", f"user{k}", ACTIONS[i % 4])
        for k in range(N_THREADS)
        for i in range(PER_THREAD)
    }
    assert len(decisions) == total and set(decisions) == expected
    assert outcomes == {
        f"t{k}-{i}": reward_of(k, i) for k in range(N_THREADS) for i in range(PER_THREAD)
    }
    assert health["written_decisions"] == total and health["written_outcomes"] == total
    assert health["duplicates"] == n_dupes
    assert (
        health["failed_writes"] == health["dropped_events"] == health["memory_fallback_events"] == 0
    )
    if durability == "sync":
        # group commit: concurrent callers share transactions
        assert health["commits"] < 2 * total
