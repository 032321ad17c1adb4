"""Benchmarks of the decision log, reported as ratios to references measured in the same run.

- ``append_decision`` latency per durability mode vs a no-op log (a method that only hands
  the record to a deque: the least any log can do on the caller's thread);
- sustained writer throughput (events/s, append to fully committed) vs a raw ``executemany``
  of the same rows, already encoded, into the same schema: the floor set by SQLite itself;
- ``read_log`` vs ``pandas.read_sql`` of the raw decisions table.

Size: 2,000 decisions by default, 50,000 with ``CARTWISE_BENCH_SCALE=large``. Targets are
checked only at the large scale with benchmarking enabled.
"""

import collections
import json
import os
import sqlite3

import numpy as np
import pandas as pd
import pytest
from bench_utils import LARGE, per_call_seconds, record_ratio

from engine.actions import ACTION_NAMES
from engine.decision_log import DecisionLog, DecisionRecord, read_log
from engine.decision_log.schema import (
    DDL,
    DECISION_INSERT,
    encode_f32,
    encode_f64,
    encode_mask,
    vocab_id,
)

N = 50_000 if LARGE else 2_000
ACTIONS = ACTION_NAMES
FEATURES = [f"f{j:02d}" for j in range(24)]
# batch append may cost at most this many no-op hand-offs (~0.1 us); the writer may take at
# most this many times a raw executemany of pre-encoded rows (measured: about 40x and 2x)
TARGETS = {"batch_vs_noop": 100.0, "writer_vs_raw_sqlite": 6.0}


@pytest.fixture(scope="module")
def records():
    rng = np.random.default_rng(0)
    out = []
    for i in range(N):
        weights = rng.random(len(ACTIONS)) + 0.05
        probs = weights / weights.sum()
        out.append(
            DecisionRecord(
                timestamp=1_767_225_600.0 + i,
                user_hash=f"{rng.integers(1 << 62):016x}",
                model_version="m1",
                actions=ACTIONS,
                probabilities=probs,
                eligible=ACTIONS,
                action=ACTIONS[int(rng.choice(len(ACTIONS), p=probs))],
                features=dict(zip(FEATURES, rng.normal(size=len(FEATURES)).tolist(), strict=True)),
                payload={"coupon_percent": 10, "channel": "email"},
                decision_id=f"{i:032x}",
            )
        )
    return out


class NullLog:
    """Reference: hands the record over and returns, like a log with infinitely fast storage."""

    def __init__(self):
        self._queue = collections.deque()

    def append_decision(self, record):
        self._queue.append(record)
        return record.decision_id


def appender(log, records):
    feed = iter(records)
    return lambda: log.append_decision(next(feed))


@pytest.mark.parametrize("durability", ["batch", "sync", "fsync"])
def test_bench_append_decision_latency(benchmark, tmp_path, records, durability):
    calls = (
        len(records) // 4
        if durability == "batch"
        else min(len(records) // 4, 2_000 if LARGE else 100)
    )
    chunks = [records[k * calls : (k + 1) * calls] for k in range(4)]
    with DecisionLog(tmp_path / "bench.db", durability=durability) as log:
        feed = iter(chunks[0])
        benchmark.pedantic(lambda: log.append_decision(next(feed)), rounds=calls, iterations=1)
        subject = min(
            per_call_seconds(appender(log, chunk), calls=calls, repeats=1) for chunk in chunks[1:3]
        )
    reference = per_call_seconds(appender(NullLog(), records), calls=len(records) // 5, repeats=5)
    ratio = record_ratio(benchmark, f"{durability}_vs_noop", subject, reference)
    if durability != "batch":
        with DecisionLog(tmp_path / "batch.db", durability="batch") as batch_log:
            batch = per_call_seconds(appender(batch_log, chunks[3]), calls=calls, repeats=1)
        record_ratio(benchmark, f"{durability}_vs_batch", subject, batch)
    benchmark.extra_info["calls"] = calls
    if LARGE and not benchmark.disabled and durability == "batch":
        assert ratio <= TARGETS["batch_vs_noop"], f"batch append is {ratio:.1f}x a no-op hand-off"


def raw_rows(records):
    return [
        (
            r.decision_id,
            r.timestamp,
            r.user_hash,
            r.model_version,
            r.action,
            r.action_index,
            r.probability,
            vocab_id("actions", r.actions),
            encode_f64(r.probabilities),
            encode_mask(r.actions, r.eligible),
            vocab_id("features", tuple(r.features)),
            encode_f32(tuple(r.features.values())),
            r.payload_json,
            int(r.fallback),
            r.timestamp + 3600.0,
        )
        for r in records
    ]


def test_bench_writer_throughput(benchmark, tmp_path, records):
    runs = iter(range(1000))

    def push_all():
        with DecisionLog(tmp_path / f"w{next(runs)}.db") as log:
            for rec in records:
                log.append_decision(rec)
            assert log.flush()

    benchmark.pedantic(push_all, rounds=3, iterations=1)
    subject = per_call_seconds(push_all, calls=1, repeats=3)

    rows = raw_rows(records)
    head, width = DECISION_INSERT
    single_row_sql = head + "(" + ",".join("?" * width) + ")"

    def raw_insert():
        conn = sqlite3.connect(tmp_path / f"raw{next(runs)}.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(DDL)
        conn.execute("BEGIN")
        conn.executemany(single_row_sql, rows)
        conn.execute("COMMIT")
        conn.close()

    reference = per_call_seconds(raw_insert, calls=1, repeats=3)
    ratio = record_ratio(benchmark, "writer_vs_raw_sqlite", subject, reference)
    wal = tmp_path / "w0.db-wal"
    size = os.path.getsize(tmp_path / "w0.db") + (os.path.getsize(wal) if wal.exists() else 0)
    sample = records[0]
    benchmark.extra_info.update(
        {
            "decisions": len(records),
            "events_per_second": round(len(records) / subject),
            "raw_sqlite_rows_per_second": round(len(records) / reference),
            "db_bytes_per_decision": round(size / len(records)),
            "features_blob_bytes": len(encode_f32(tuple(sample.features.values()))),
            "features_json_bytes": len(json.dumps(sample.features, separators=(",", ":"))),
        }
    )
    if LARGE and not benchmark.disabled:
        assert ratio <= TARGETS["writer_vs_raw_sqlite"], f"writer is {ratio:.1f}x a raw executemany"


def test_bench_read_log(benchmark, tmp_path, records):
    path = tmp_path / "read.db"
    with DecisionLog(path) as log:
        for rec in records:
            log.append_decision(rec)
        for rec in records[::3]:
            log.append_outcome(rec.decision_id, 1.0, rec.timestamp + 60)
    df = benchmark(read_log, path)
    assert len(df) == len(records) and df["reward"].notna().sum() == len(records[::3])
    subject = per_call_seconds(lambda: read_log(path), calls=1, repeats=3)

    def raw_read():
        with sqlite3.connect(path) as conn:
            return pd.read_sql("SELECT * FROM decisions", conn)

    reference = per_call_seconds(raw_read, calls=1, repeats=3)
    record_ratio(benchmark, "read_log_vs_read_sql", subject, reference)
    benchmark.extra_info["rows_per_second"] = round(len(records) / subject)
