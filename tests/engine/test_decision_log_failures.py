"""Disk failures (injected errors, a real SQLITE_FULL) and a stuck writer: the log keeps
accepting, holds events in bounded memory, retries, and never corrupts committed data."""

import sqlite3
import threading
import time

import pytest

from engine.decision_log import DecisionLog, DecisionRecord
from engine.decision_log.store import default_connect

ACTIONS = ("none", "coupon_5", "recall_message")


def make_record(i):
    return DecisionRecord(
        timestamp=1000.0 + i,
        user_hash=f"u{i % 7}",
        model_version="m1",
        actions=ACTIONS,
        probabilities=(0.5, 0.25, 0.25),
        eligible=ACTIONS,
        action=ACTIONS[i % 3],
        features={"i": float(i), "pad": 0.25},
        payload={"note": "x" * 40},
        decision_id=f"d{i}",
    )


class Faults:
    """Switchboard for FaultyConnection.

    Raises ``error`` on SQL starting with ``on``; blocks on ``gate``.
    """

    def __init__(self):
        self.error: Exception | None = None
        self.on = (
            "INSERT"  # or "COMMIT", or "LATE_INSERT" (an INSERT after another in one transaction)
        )
        self._inserts_in_transaction = 0
        self.gate = threading.Event()
        self.gate.set()
        self.blocked = threading.Event()

    def connect(self, path):
        return FaultyConnection(default_connect(path), self)


class FaultyConnection:
    def __init__(self, conn, faults):
        self._conn, self._faults = conn, faults

    def _check(self, sql):
        verb = sql.lstrip().split(" ", 1)[0].upper()
        if not self._faults.gate.is_set() and verb in ("BEGIN", "INSERT"):
            self._faults.blocked.set()
            self._faults.gate.wait()
        faults = self._faults
        faults._inserts_in_transaction = (
            0 if verb == "BEGIN" else faults._inserts_in_transaction + (verb == "INSERT")
        )
        # a lone INSERT outside BEGIN ... COMMIT is its own transaction: it commits too
        commits = verb == "COMMIT" or (verb == "INSERT" and not self._conn.in_transaction)
        late = verb == "INSERT" and self._conn.in_transaction and faults._inserts_in_transaction > 1
        if faults.error is not None and (
            verb == faults.on
            or (faults.on == "COMMIT" and commits)
            or (faults.on == "LATE_INSERT" and late)
        ):
            raise faults.error

    def execute(self, sql, *args):
        self._check(sql)
        return self._conn.execute(sql, *args)

    def executemany(self, sql, rows):
        self._check(sql)
        return self._conn.executemany(sql, rows)

    def executescript(self, script):
        return self._conn.executescript(script)  # schema creation: not a fault target

    @property
    def in_transaction(self):
        return self._conn.in_transaction

    def close(self):
        self._conn.close()


def snapshot(path):
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = sorted(r[0] for r in conn.execute("SELECT decision_id FROM decisions"))
        outcomes = conn.execute("SELECT count(*) FROM outcomes").fetchone()[0]
        return ids, outcomes
    finally:
        conn.close()


def ids(n, start=0):
    return sorted(f"d{i}" for i in range(start, start + n))


FAULTS = {
    "io-error": (sqlite3.OperationalError("disk I/O error"), "INSERT"),
    "io-error-after-first-insert": (sqlite3.OperationalError("disk I/O error"), "LATE_INSERT"),
    "full-at-commit": (sqlite3.OperationalError("database or disk is full"), "COMMIT"),
    "read-only": (sqlite3.OperationalError("attempt to write a readonly database"), "INSERT"),
}
CASES = [
    (d, name)
    for d in ("batch", "sync")
    for name in FAULTS
    if not (d == "sync" and name == "io-error-after-first-insert")
]  # sync commits one statement


@pytest.mark.parametrize(("durability", "fault"), CASES)
def test_injected_write_errors_are_buffered_and_retried(tmp_path, durability, fault):
    error, on = FAULTS[fault]
    faults = Faults()
    path = tmp_path / "f.db"
    # a long interval: the explicit flush() calls are the only batch-mode commits
    with DecisionLog(
        path, durability=durability, flush_interval=30.0, _connect=faults.connect
    ) as log:
        for i in range(50):
            log.append_decision(make_record(i))
        assert log.append_outcome("d0", 1.0, 1001.0).accepted
        assert log.flush()
        before = snapshot(path)
        assert before == (ids(50), 1)

        faults.error, faults.on = error, on
        for i in range(50, 150):
            log.append_decision(make_record(i))  # never raises
        assert log.append_outcome("d1", 2.0, 1002.0).accepted  # known from the memory buffer
        assert log.append_outcome("d60", 3.0, 1062.0).accepted
        assert log.append_outcome("d60", 4.0, 1063.0).status.value == "duplicate"
        assert not log.flush()
        health = log.health()
        assert health["failed_writes"] >= 1 and not health["healthy"]
        assert str(error) in health["last_error"]
        assert health["spill_buffered"] == 102 and health["memory_fallback_events"] >= 102
        assert snapshot(path) == before  # nothing partial, nothing lost

        faults.error = None  # the disk is back
        assert log.flush()
        health = log.health()
        assert health["healthy"] and health["spill_buffered"] == 0 and health["dropped_events"] == 0
    assert snapshot(path) == (ids(150), 3)


def test_real_full_disk_via_max_page_count(tmp_path):
    """A page quota on the write connection gives a genuine SQLITE_FULL from SQLite itself."""
    limit = {"pages": None}

    def connect(path):
        conn = default_connect(path)
        if limit["pages"] is not None:
            conn.execute(f"PRAGMA max_page_count = {limit['pages']}")
        return conn

    path = tmp_path / "full.db"
    with DecisionLog(path, durability="sync") as log:
        for i in range(20):
            log.append_decision(make_record(i))
    limit["pages"] = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0] + 2
    with DecisionLog(path, durability="sync", _connect=connect) as log:
        accepted = 20
        while log.health()["failed_writes"] == 0 and accepted < 5000:
            log.append_decision(make_record(accepted))
            accepted += 1
        for i in range(accepted, accepted + 200):  # keep writing into a full disk
            log.append_decision(make_record(i))
        total = accepted + 200
        health = log.health()
        assert "database or disk is full" in health["last_error"]
        stored, _ = snapshot(path)
        assert len(stored) == 20 + health["written_decisions"] and stored == ids(len(stored))
        assert health["spill_buffered"] + health["queued"] == total - len(stored) > 200

        limit["pages"] = None  # space freed: the retry reconnects without the quota
        assert log.flush()
    assert snapshot(path) == (ids(total), 0)


def test_stuck_writer_never_blocks_callers_and_memory_stays_bounded(tmp_path):
    faults = Faults()
    with DecisionLog(
        path := tmp_path / "stuck.db",
        queue_size=100,
        spill_size=50,
        flush_events=10,
        _connect=faults.connect,
    ) as log:
        faults.gate.clear()
        log.append_decision(make_record(0))
        assert faults.blocked.wait(5.0)  # the writer is now stuck inside a commit
        done = threading.Event()

        def produce():
            for i in range(1, 400):
                log.append_decision(make_record(i))
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        assert done.wait(10.0), "append_decision blocked on a stuck writer"
        health = log.health()
        assert (health["queued"], health["spill_buffered"]) == (100, 50)
        assert health["memory_fallback_events"] == 50 and health["dropped_events"] == 249
        faults.gate.set()
        producer.join()
        assert log.flush()
    stored, _ = snapshot(path)
    assert stored == ids(151)  # d0 (in the stuck commit), then the first 100 + 50 buffered


def test_spill_is_bounded_during_failures_and_drops_are_counted(tmp_path, caplog):
    faults = Faults()
    faults.error = sqlite3.OperationalError("disk I/O error")
    with DecisionLog(
        tmp_path / "b.db",
        durability="sync",
        queue_size=1000,
        spill_size=30,
        _connect=faults.connect,
    ) as log:
        with caplog.at_level("ERROR", logger="engine.decision_log"):
            for i in range(100):
                log.append_decision(make_record(i))
            log.flush()
        health = log.health()
        assert health["spill_buffered"] + health["queued"] <= 30 + 1000
        assert health["spill_buffered"] == 30
        assert health["dropped_events"] == 70
        assert "dropped" in caplog.text
        faults.error = None
        assert log.flush()
        assert log.health()["written_decisions"] == 30
        assert log.get_decision("d99") is None  # dropped decisions are forgotten everywhere


def test_failures_back_off_instead_of_retrying_every_call(tmp_path):
    faults = Faults()
    faults.error = sqlite3.OperationalError("disk I/O error")
    with DecisionLog(
        tmp_path / "bo.db", durability="sync", flush_interval=0.05, _connect=faults.connect
    ) as log:
        start = time.monotonic()
        for i in range(300):
            log.append_decision(make_record(i))
        elapsed = time.monotonic() - start
        attempts = log.health()["failed_writes"]
        # back-off doubles from 50 ms (capped at 2 s): few attempts, not one per append
        assert 1 <= attempts <= 3 + elapsed / 0.05
        assert attempts < 300
        faults.error = None
        assert log.flush()


def test_sync_caller_stops_waiting_for_a_hung_disk(tmp_path, monkeypatch):
    monkeypatch.setattr("engine.decision_log.writer.SYNC_WAIT_S", 0.2)
    faults = Faults()
    path = tmp_path / "hung.db"
    with DecisionLog(path, durability="sync", _connect=faults.connect) as log:
        log.append_decision(make_record(0))
        faults.gate.clear()  # the next commit hangs in its first write
        returned = threading.Event()
        caller = threading.Thread(
            target=lambda: (log.append_decision(make_record(1)), returned.set())
        )
        caller.start()
        assert returned.wait(5.0), "a sync append waited for a hung disk"
        assert faults.blocked.is_set() and log.health()["sync_timeouts"] == 1
        faults.gate.set()
        caller.join()
        assert log.flush()
    assert snapshot(path) == (ids(2), 0)


def test_unreadable_database_keeps_rewards_and_counts_read_errors(tmp_path, monkeypatch):
    with DecisionLog(tmp_path / "r.db") as log:
        log.append_decision(make_record(0))
        assert log.flush()

        def broken(*args):
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(log._store, "decision_state", broken)
        monkeypatch.setattr(log._store, "latest_for_user", broken)
        assert log.append_outcome("d0", 1.0, 1001.0).accepted  # cannot check: kept, the DB dedups
        assert log.outcome_for_user("u0", 1.0, 1001.0, hashed=True).status.value == "unattributed"
        assert log.health()["read_errors"] == 2
        assert log.flush()
        monkeypatch.undo()
        assert log.append_outcome("d0", 2.0, 1002.0).status.value == "duplicate"
