"""Many checkout processes, one PostgreSQL store: decisions logged once, outcomes from any
process joined once in the database, outages bridged by the spill file.

Sizes: 4 processes x 2 threads decide N_CARTS = 20,000 carts while a fifth process reports
the outcome of every 4th cart once it is stored (5,000, plus 1,000 duplicates; 100 of them
before their cart is decided); the outage test cuts the store
off for 10 s.
"""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from tcp_proxy import TcpProxy

from engine import DecisionEngine, read_log, record_order, record_outcome
from engine.decision_log import DecisionLog, DecisionRecord
from engine.decision_log.postgres import (
    CHECK_IDLE_S,
    CONNECT_TIMEOUT_S,
    POOL_TIMEOUT_S,
    IdleCheck,
    PostgresStore,
    event_of,
    new_event_id,
)
from engine.decision_log.records import OutcomeRecord

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
N_CARTS = 20_000
N_PROCS, N_THREADS = 4, 2
OUTCOME_EVERY, DUPLICATE_EVERY = 4, 20  # an outcome for every 4th cart; a second one for every 20th
N_EARLY = 100  # outcomes reported before their cart is decided
T0 = 1_767_225_600.0


def cart(i: int) -> dict:
    """A valid context for cart ``i`` (user ``u<i % 5000>``, one second apart)."""
    return {
        "user_id": f"u{i % 5000}",
        "timestamp": T0 + i,
        "cart": [{"item_id": f"i{i % 50}", "price": 20.0 + i % 80, "quantity": 1 + i % 3}],
        "channels": {"email": True, "sms": i % 2 == 0, "push": i % 3 == 0},
    }


DECIDER = r"""
import sys, threading, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests/engine", sys.argv[1] + "/tests/support"]
from test_decision_log_postgres import cart
from engine import DecisionEngine
url, spill = sys.argv[2], sys.argv[7]
proc, n_procs, n_threads, n = (int(v) for v in sys.argv[3:7])
from engine.decision_log import DecisionLog
eng = DecisionEngine(
    seed=0, log=DecisionLog(url, spill_dir=spill, salt="cartwise-development-salt")
)
mine = [i for i in range(n) if i % n_procs == proc]
fallbacks = []
def run(k):
    for i in mine[k::n_threads]:
        fallbacks.append(eng.decide(cart(i), decision_id=f"c{i}").fallback)
threads = [threading.Thread(target=run, args=(k,)) for k in range(n_threads)]
for t in threads: t.start()
for t in threads: t.join()
eng.close()
h = eng.health()["log"]
counts = (h["written_decisions"], h["spill_file_events"], h["dropped_events"])
print(sum(fallbacks), len(fallbacks), *counts)
"""

REPORTER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import psycopg
from engine import record_outcome
url = sys.argv[2]
n, every, dup, n_early = (int(v) for v in sys.argv[3:7])
t0 = 1_767_225_600.0
todo = set(range(0, n, every))
statuses, reported, busy = {}, 0, 0.0

def report(i):
    global reported, busy
    t = time.perf_counter()
    pairs = [(float(i), 30.0)] + ([(-1.0, 40.0)] if i % dup == 0 else [])
    for value, delay in pairs:
        s = record_outcome(url, f"c{i}", value=value, timestamp=t0 + i + delay)
        statuses[s] = statuses.get(s, 0) + 1
        reported += 1
    busy += time.perf_counter() - t
    todo.discard(i)

for i in sorted(todo)[-n_early:]:  # reported before their carts are decided: wait in the store
    report(i)
last, deadline = 0, time.monotonic() + 500
LAG = 10_000  # more than every decision the processes can hold uncommitted at once
with psycopg.connect(url, autocommit=True) as conn:
    # like an order service: outcomes of stored decisions. decisions.seq is drawn at insert and
    # the processes' transactions commit in another order, so a row can appear after rows with
    # a higher seq: each poll looks LAG positions back (outcomes.seq, which the trainer reads,
    # is commit order by design; decisions.seq is not)
    while todo and time.monotonic() < deadline:
        rows = conn.execute(
            "SELECT seq, decision_id FROM decisions WHERE seq > %s ORDER BY seq", (last - LAG,)
        ).fetchall()
        fresh = [int(did[1:]) for _, did in rows if int(did[1:]) in todo]
        for i in fresh:
            report(i)
        if rows:
            last = max(last, rows[-1][0])
        if not fresh:
            time.sleep(0.05)
print(reported, round(busy, 3), statuses)
"""


def test_processes_decide_and_report_against_one_store(pg_url, tmp_path):
    start = time.perf_counter()
    deciders = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                DECIDER,
                str(ROOT),
                pg_url,
                str(p),
                str(N_PROCS),
                str(N_THREADS),
                str(N_CARTS),
                str(tmp_path / "spill"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(N_PROCS)
    ]
    reporter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            REPORTER,
            str(ROOT),
            pg_url,
            str(N_CARTS),
            str(OUTCOME_EVERY),
            str(DUPLICATE_EVERY),
            str(N_EARLY),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    results = [p.communicate(timeout=600)[0].split() for p in deciders]
    decide_s = time.perf_counter() - start
    report_out = reporter.communicate(timeout=600)[0]
    assert all(p.returncode == 0 for p in deciders) and reporter.returncode == 0, report_out
    assert sum(int(r[0]) for r in results) == 0  # no fallback
    assert sum(int(r[1]) for r in results) == N_CARTS
    assert all(
        r[3] == "0" and r[4] == "0" for r in results
    )  # nothing left in spill files, nothing dropped
    assert sum(int(r[2]) for r in results) == N_CARTS  # each decision written once, by its process

    with DecisionLog(pg_url, spill_dir=tmp_path / "spill") as log:
        assert log.close_expired(T0) == []  # also settles outcomes that waited for their decision
    reported = N_CARTS // OUTCOME_EVERY
    duplicates = len(range(0, N_CARTS, DUPLICATE_EVERY))
    with psycopg.connect(pg_url) as conn:
        ids = conn.execute("SELECT decision_id FROM decisions").fetchall()
        outcomes = dict(conn.execute("SELECT decision_id, reward FROM outcomes").fetchall())
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM outcome_events GROUP BY status").fetchall()
        )
    assert len(ids) == N_CARTS and {i for (i,) in ids} == {f"c{i}" for i in range(N_CARTS)}
    assert statuses == {"joined": reported, "duplicate": duplicates}
    assert outcomes == {f"c{i}": float(i) for i in range(0, N_CARTS, OUTCOME_EVERY)}  # first wins
    n_events, report_s, _ = report_out.split(maxsplit=2)
    print(
        f"\n{N_CARTS} decisions by {N_PROCS}x{N_THREADS} threads in {decide_s:.1f} s "
        f"({N_CARTS / decide_s:.0f}/s incl. start-up); {n_events} outcome events reported and "
        f"joined in {float(report_s):.1f} s of record_outcome calls "
        f"({int(n_events) / float(report_s):.0f}/s, one transaction each)"
    )


def test_retried_decide_returns_the_same_action_and_leaves_one_row(pg_url, tmp_path):
    engines = [
        DecisionEngine(seed=0, log=DecisionLog(pg_url, durability="sync", spill_dir=tmp_path))
        for _ in range(2)
    ]
    first = [engines[0].decide(cart(i), decision_id=f"req-{i}") for i in range(200)]
    again = [engines[0].decide(cart(i), decision_id=f"req-{i}") for i in range(200)]  # same process
    other = [
        engines[1].decide(cart(i), decision_id=f"req-{i}") for i in range(200)
    ]  # another worker
    for eng in engines:
        eng.close()
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert [d.action for d in other] == [d.action for d in first]
    assert len({d.action for d in first}) > 1  # the hash really samples
    assert engines[0].health()["retries"] == 200
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT decision_id, action FROM decisions").fetchall()
    assert sorted(rows) == sorted((f"req-{i}", d.action) for i, d in enumerate(first))


def test_outage_decide_keeps_answering_and_nothing_is_lost(pg_url, tmp_path):
    host_port = pg_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    proxy = TcpProxy(host, int(port))
    proxied = pg_url.replace(host_port, f"127.0.0.1:{proxy.port}")
    eng = DecisionEngine(seed=0, log=DecisionLog(proxied, spill_dir=tmp_path / "spill"))
    decisions, latencies, health_during = [], [], None
    start = time.monotonic()
    i = 0
    try:
        while (now := time.monotonic() - start) < 16.0:
            if 3.0 <= now < 13.0 and not proxy._down:
                proxy.cut()
            elif now >= 13.0 and proxy._down:
                health_during = eng.health()["log"]
                proxy.restore()
            t = time.perf_counter()
            decisions.append(eng.decide(cart(i)))
            latencies.append(time.perf_counter() - t)
            i += 1
            time.sleep(0.002)
        deadline = time.monotonic() + 60
        while eng.health()["log"]["spill_file_events"] or eng.health()["log"]["queued"]:
            assert time.monotonic() < deadline, eng.health()["log"]
            time.sleep(0.2)
        eng.close()
    finally:
        proxy.close()
    assert not any(d.fallback for d in decisions)
    # decide never waited for the store: the log's writer waits up to POOL_TIMEOUT_S (2 s) for a
    # connection and CONNECT_TIMEOUT_S (3 s) to connect, so a decide that waited on either would
    # take seconds. The contact-cap claim is bounded by its own 0.25 s pool timeout; the rest of
    # the bound is room for a loaded 2-core CI machine (one decide took 0.52 s there)
    slowest, median = max(latencies), float(np.median(latencies))
    assert slowest < min(POOL_TIMEOUT_S, CONNECT_TIMEOUT_S) / 2, slowest
    assert median < 0.01, median
    assert health_during["spill_file_events"] > 0 and not health_during["healthy"]
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute(
            "SELECT decision_id, count(*) FROM decisions GROUP BY decision_id"
        ).fetchall()
        n_rows = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    assert n_rows == len(decisions) == len(stored)
    assert {did for did, _ in stored} == {d.decision_id for d in decisions}
    print(
        f"\noutage: {len(decisions)} decisions, {health_during['spill_file_events']} in the spill "
        f"file during the 10 s cut, slowest decide {slowest * 1000:.1f} ms, "
        f"median {median * 1000:.2f} ms"
    )


def _decision(log, did, user, ts, action="coupon_5"):
    actions = ("none", "coupon_5")
    log.append_decision(
        DecisionRecord(
            timestamp=ts,
            user_hash=log.hash_user(user),
            model_version="m",
            actions=actions,
            probabilities=(0.5, 0.5),
            eligible=actions,
            action=action,
            decision_id=did,
        )
    )


def test_join_rules_in_the_database(pg_url, tmp_path):
    salt = "cartwise-development-salt"
    with DecisionLog(
        pg_url, durability="sync", attribution_window=3600.0, salt=salt, spill_dir=tmp_path
    ) as log:
        # an outcome reported before its decision is stored waits, then joins
        assert record_outcome(pg_url, "early", value=5.0, timestamp=T0 + 10) == "pending"
        _decision(log, "early", "ua", T0)
        _decision(log, "a1", "ub", T0)
        _decision(log, "a2", "ub", T0 + 100)  # ub's latest
        _decision(log, "c1", "uc", T0 + 50)
        _decision(log, "d1", "ud", T0)
        assert (
            record_order(pg_url, user_id="ub", value=9.0, timestamp=T0 + 200, order_id="o1")
            == "joined"
        )
        assert (
            record_order(pg_url, user_id="ub", value=9.0, timestamp=T0 + 200, order_id="o1")
            == "duplicate"
        )
        # an order dated 30 s before the user's decision (clock skew) is inside the backward window
        assert (
            record_order(pg_url, user_id="uc", value=3.0, timestamp=T0 + 20, order_id="o2")
            == "joined"
        )
        assert record_outcome(pg_url, "d1", value=1.0, timestamp=T0 + 3600 + 1) == "late"
        assert record_order(pg_url, user_id="nobody", value=1.0, timestamp=T0) == "pending"
        # windows closed without a joined outcome get the default reward (the late one does not
        # count)
        assert log.close_expired(T0 + 4000) == [("a1", 0.0), ("d1", 0.0)]
    df = read_log(pg_url).set_index("decision_id")
    assert (
        df.loc["early", "reward"] == 5.0
        and df.loc["a2", "reward"] == 9.0
        and df.loc["c1", "reward"] == 3.0
    )
    assert df.loc["a2", "order_id"] == "o1" and df.loc["c1", "reward_source"] == "event"
    assert df.loc["a1", "reward"] == 0.0 and df.loc["a1", "reward_source"] == "default"
    assert df.loc["d1", "reward"] == 0.0  # the late outcome is kept as an event, never joined
    with psycopg.connect(pg_url) as conn:
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM outcome_events GROUP BY status").fetchall()
        )
    assert statuses == {"joined": 3 + 2, "duplicate": 1, "late": 1, "pending": 1}  # and 2 defaults


def test_the_join_reads_decisions_by_index_however_small_the_tables_were(pg_url, tmp_path):
    """PL/pgSQL caches its plans per session: a long-lived connection that first joined on
    empty tables must still look decisions up by index once they hold thousands of rows (its
    cached plans used to scan the whole table at every join: 9-13 ms per outcome at 20,000
    decisions against 1.5-2 ms)."""
    store = PostgresStore(pg_url, pool_size=1)  # one connection: one session's plan cache
    plans: list[str] = []
    with store._pool.connection() as conn:
        conn.execute("LOAD 'auto_explain'")  # the plans of the function's own statements
        for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
            conn.execute(f"SET auto_explain.{setting}")
        conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))

    def report(decision_id: str) -> str:
        outcome = OutcomeRecord(decision_id, T0 + 30, 1.0, "reward", None)
        return store.report([event_of(outcome, new_event_id())])[0]

    # more than PL/pgSQL's five custom plans: the session settles on its cached generic plans
    assert [report(f"early{k}") for k in range(8)] == ["pending"] * 8
    eng = DecisionEngine(seed=0, log=DecisionLog(pg_url, spill_dir=tmp_path))
    for i in range(3000):
        eng.decide(cart(i), decision_id=f"c{i}")
    eng.close()
    plans.clear()
    assert report("c7") == "joined"
    store.close()
    nested = "\n".join(plans)
    assert "decisions" in nested and "Index" in nested, nested  # the lookups were explained
    assert "Seq Scan on decisions" not in nested, nested


def test_read_log_gives_the_same_frame_for_both_stores(pg_url, tmp_path):
    frames = []
    for target in (str(tmp_path / "log.db"), pg_url):
        eng = DecisionEngine(store=target, seed=0, learner="linucb")
        for i in range(300):
            d = eng.decide(cart(i))
            if i % 3 == 0:
                eng.reward(d.decision_id, float(i % 7), T0 + i + 5)
        eng.close()
        frames.append(read_log(target).drop(columns=["decision_id", "reward_timestamp"]))
    sqlite_df, pg_df = frames
    assert list(sqlite_df.columns) == list(pg_df.columns)
    import pandas as pd

    pd.testing.assert_frame_equal(sqlite_df, pg_df, check_dtype=True)


def _terminate(pg_url, pid):
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_the_pool_checks_a_connection_only_after_it_was_idle(pg_url):
    """A connection handed out again at once is used unchecked (a broken one fails its read,
    and the pool discards it); one idle for CHECK_IDLE_S is checked and replaced if broken."""
    store = PostgresStore(pg_url, pool_size=1)
    try:
        pid = store._read("SELECT pg_backend_pid()")[0][0]
        _terminate(pg_url, pid)
        with pytest.raises(psycopg.OperationalError):  # no check: the read meets the dead link
            store.decision_state("no-such-id")
        pid = store._read("SELECT pg_backend_pid()")[0][0]  # a new connection
        assert store.decision_state("no-such-id") == (False, False)
        _terminate(pg_url, pid)
        time.sleep(CHECK_IDLE_S + 0.2)
        assert store.decision_state("no-such-id") == (False, False)  # checked, replaced
        assert store._read("SELECT pg_backend_pid()")[0][0] != pid
    finally:
        store.close()


def test_idle_check_sends_a_round_trip_only_when_due(pg_url):
    conn = psycopg.connect(pg_url, autocommit=True)
    try:
        lazy, eager = IdleCheck(idle_s=3600.0), IdleCheck(idle_s=0.0)
        lazy(conn)  # first use: checked
        _terminate(pg_url, conn.info.backend_pid)
        lazy(conn)  # within the idle time: no round trip, so the dead link goes unnoticed
        with pytest.raises(psycopg.OperationalError):
            eager(conn)
    finally:
        conn.close()
