"""PostgreSQL access for the shared decision log (psycopg 3 with a connection pool).

Implements :class:`~engine.decision_log.store_api.Store`. Writes are one transaction per
batch with one ``INSERT ... SELECT FROM unnest(...)`` per table (one round trip each,
idempotent through ``ON CONFLICT DO NOTHING``), followed by the in-database join of
pending outcome events (see :mod:`engine.decision_log.pg_schema`). Outcomes are written
as events: an outcome from the log for decision ``d`` gets the event id ``d:<d>``, so a
replayed batch inserts nothing twice.
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool

from .engine_batch import PreparedDecision
from .pg_schema import migrate
from .records import DecisionRecord, OutcomeRecord
from .schema import DECISION_COLUMNS, decode_names
from .store_rows import VocabularyCache, decision_rows, record_of_row

POOL_TIMEOUT_S = 2.0  # longest wait for a connection before a write or read counts as failed
CONNECT_TIMEOUT_S = 3
# an event up to this long before a user's decision is still attributed to it
BACKWARD_WINDOW_S = 120.0
PENDING_TTL_S = 600.0  # an event whose decision never arrives is marked unknown after this long
CHECK_IDLE_S = 1.0
"""A pooled connection handed out again within this many seconds is not checked first."""

_DECISION_INSERT = (
    "INSERT INTO decisions (decision_id, timestamp, user_hash, model_version, action, action_index,"
    " probability, action_set, probabilities, eligible, feature_set, features, payload, fallback,"
    " window_closes) SELECT * FROM unnest(%b::text[], %b::float8[], %b::text[], %b::text[],"
    " %b::text[], %b::int4[], %b::float8[], %b::text[], %b::bytea[], %b::bytea[], %b::text[],"
    " %b::bytea[], %b::text[], %b::bool[], %b::float8[]) ON CONFLICT (decision_id) DO NOTHING"
)
_VOCAB_INSERT = (
    "INSERT INTO vocabularies (vocab_id, kind, names)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])"
    " ON CONFLICT (vocab_id) DO NOTHING"
)
_JOIN_SOME = "SELECT cartwise_join_pending(%s, %s, %b::text[], %b::text[], %b::text[])"
_EVENT_INSERT = (
    "INSERT INTO outcome_events"
    " (event_id, decision_id, user_hash, timestamp, reward, source, order_id)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::float8[], %b::float8[],"
    " %b::text[], %b::text[]) ON CONFLICT (event_id) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class OutcomeEvent:
    """An outcome reported to a shared store, keyed by decision id or by user hash."""

    event_id: str
    decision_id: str | None
    user_hash: str | None
    timestamp: float
    reward: float
    source: str
    order_id: str | None = None


def event_of(outcome: OutcomeRecord, event_id: str | None = None) -> OutcomeEvent:
    """The event of an outcome; ``event_id`` defaults to ``d:<decision id>``.

    The default is the id a log outcome is written with: it makes a replay a no-op.
    """
    return OutcomeEvent(
        "d:" + outcome.decision_id if event_id is None else event_id,
        outcome.decision_id,
        None,
        outcome.timestamp,
        outcome.reward,
        outcome.source,
        outcome.order_id,
    )


def new_event_id() -> str:
    """A fresh, unique id for an outcome event reported by user or order."""
    return "e:" + uuid.uuid4().hex


class IdleCheck:
    """A pool ``check``: a round trip to the server only for a connection idle for a while.

    psycopg_pool's own ``check_connection`` sends an empty query every time a connection is
    handed out, which doubled the round trips of every read and every commit. This check sends
    it only when the connection was last handed out :data:`CHECK_IDLE_S` or more ago (or never
    was), when a dropped connection is likely (a server restart, a firewall's idle timeout). A
    connection that breaks between two close uses fails its statement instead, which the
    callers already handle (a failed commit is retried from the spill, a failed read counted),
    and the pool discards it.
    """

    def __init__(self, idle_s: float = CHECK_IDLE_S) -> None:
        self.idle_s = idle_s
        self._last: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self, conn: psycopg.Connection[Any]) -> None:
        """Check ``conn`` if it is due (raises what a failed round trip raises), then stamp it."""
        now = time.monotonic()
        last = self._last.get(conn)
        if last is None or now - last >= self.idle_s:
            psycopg_pool.ConnectionPool.check_connection(conn)
        self._last[conn] = now


class PostgresStore:
    """Reads and writes the decision log in one PostgreSQL database (or schema).

    Args:
        url: libpq URL, e.g. ``postgresql://postgres@127.0.0.1:5432/test``; a schema other than
            ``public`` is chosen with ``?options=-csearch_path%3Dname``.
        pool_size: Most connections this process opens.
        backward_window, pending_ttl: Join settings (seconds): how long before a user's decision an
            order may be dated and still be attributed to it; how long an event waits for its
            decision.
    """

    shared = True
    errors: tuple[type[BaseException], ...] = (psycopg.Error, psycopg_pool.PoolTimeout)

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        backward_window: float = BACKWARD_WINDOW_S,
        pending_ttl: float = PENDING_TTL_S,
    ) -> None:
        self.location = url
        self.backward_window = float(backward_window)
        self.pending_ttl = float(pending_ttl)
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=POOL_TIMEOUT_S,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            check=IdleCheck(),
            name="cartwise-decision-log",
        )
        self._pool.open(wait=False)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._vocab = VocabularyCache(
            self._read, "SELECT names FROM vocabularies WHERE vocab_id = %s", "the decision log"
        )
        self._stored_vocab: set[str] = set()

    # ------------------------------------------------------------------ schema
    def open(self) -> None:
        """Create or migrate the schema (idempotent; raises ``psycopg.Error`` if unreachable)."""
        with self._ready_lock:
            if self._ready:
                return
            with self._pool.connection() as conn:
                migrate(conn)
            self._ready = True

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()

    # ------------------------------------------------------------------ writes
    def write(
        self,
        decisions: Sequence[DecisionRecord | PreparedDecision],
        outcomes: Sequence[OutcomeRecord | OutcomeEvent],
        window: float,
    ) -> tuple[int, int]:
        """Write a batch in one transaction, then join pending events.

        Returns:
            (decisions, outcome events) inserted; replayed rows are not counted.
        """
        self.open()
        rows, vocab = decision_rows(decisions, window, self._stored_vocab)
        columns: list[list[Any]] = [list(column) for column in zip(*rows, strict=True)]
        if not rows:
            columns = [[] for _ in range(15)]
        events = [event_of(o) if isinstance(o, OutcomeRecord) else o for o in outcomes]
        n_dec = n_out = 0
        with self._pool.connection() as conn, conn.transaction():
            if vocab:
                conn.execute(
                    _VOCAB_INSERT,
                    (list(vocab), [k for k, _ in vocab.values()], [n for _, n in vocab.values()]),
                )
            # the arrays go as binary parameters (%b): psycopg would quote text-format arrays
            # element by element in Python, holding the GIL for tens of us per decision
            if decisions:
                n_dec = conn.execute(_DECISION_INSERT, columns).rowcount
            if events:
                n_out = conn.execute(_EVENT_INSERT, _event_columns(events)).rowcount
            conn.execute(
                _JOIN_SOME,
                (
                    self.backward_window,
                    self.pending_ttl,
                    [e.event_id for e in events],
                    columns[0],
                    sorted(set(columns[2])),
                ),
            )
        self._stored_vocab.update(vocab)
        return n_dec, n_out

    def report(self, events: Sequence[OutcomeEvent]) -> list[str]:
        """Insert outcome events and join them.

        Returns:
            Each event's status: ``joined``, ``duplicate``, ``late``, ``pending``, ``unknown``
            or ``unattributed``.
        """
        self.open()
        with self._pool.connection() as conn:
            with conn.transaction():
                conn.execute(_EVENT_INSERT, _event_columns(events))
                conn.execute(
                    _JOIN_SOME,
                    (self.backward_window, self.pending_ttl, [e.event_id for e in events], [], []),
                )
            rows: dict[str, str] = dict(
                conn.execute(
                    "SELECT event_id, status FROM outcome_events WHERE event_id = ANY(%s)",
                    ([e.event_id for e in events],),
                ).fetchall()
            )
        return [rows[e.event_id] for e in events]

    def checkpoint(self) -> tuple[int, int]:
        """Nothing to do: the server checkpoints its own write-ahead log."""
        return (0, 0)

    def sweep(self) -> int:
        """Sweep every pending event: join those whose decision has arrived, expire stale ones."""
        self.open()
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT cartwise_join_pending(%s, %s)", (self.backward_window, self.pending_ttl)
            ).fetchone()
        return int(_one_row(row, "cartwise_join_pending")[0])

    # ------------------------------------------------------------------ reads
    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        self.open()
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def decision_state(self, decision_id: str) -> tuple[bool, bool]:
        """(decision stored?, outcome stored?) for one id."""
        row = self._read(
            "SELECT EXISTS (SELECT 1 FROM decisions WHERE decision_id = %s),"
            " EXISTS (SELECT 1 FROM outcomes WHERE decision_id = %s)",
            (decision_id, decision_id),
        )[0]
        return bool(row[0]), bool(row[1])

    def latest_for_user(self, user_hash: str, at: float) -> tuple[str, float] | None:
        """(id, timestamp) of the user's latest stored decision whose window contains ``at``."""
        rows = self._read(
            "SELECT decision_id, timestamp FROM decisions WHERE user_hash = %s AND timestamp <= %s"
            " AND window_closes > %s ORDER BY timestamp DESC, seq DESC LIMIT 1",
            (user_hash, at, at),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def expired_open(self, now: float, limit: int | None = None) -> list[tuple[str, str, float]]:
        """(decision_id, action, window_closes) of decisions closed by ``now`` with no outcome."""
        return self._read(
            "SELECT d.decision_id, d.action, d.window_closes FROM decisions AS d"
            " WHERE NOT d.resolved AND d.window_closes <= %s"
            " AND NOT EXISTS (SELECT 1 FROM outcomes AS o WHERE o.decision_id = d.decision_id)"
            " ORDER BY d.window_closes LIMIT %s",
            (now, limit),
        )

    def fetch_decision(self, decision_id: str) -> DecisionRecord | None:
        """Rebuild a stored decision (features come back rounded to float32), or None."""
        rows = self._read(
            f"SELECT {DECISION_COLUMNS} FROM decisions WHERE decision_id = %s", (decision_id,)
        )
        return record_of_row(rows[0], self._vocab.names) if rows else None

    def read_rows(
        self, since: float | None = None, until: float | None = None
    ) -> tuple[list[tuple], dict[str, tuple[str, ...]]]:
        """Decisions joined with outcomes, and the vocabularies, from one snapshot.

        The rows have the layout that :func:`~engine.decision_log.export.read_log` decodes.
        """
        self.open()
        columns = ", ".join(f"d.{c.strip()}" for c in DECISION_COLUMNS.split(","))
        sql = (
            f"SELECT {columns}, o.reward, o.source, o.timestamp, o.order_id FROM decisions AS d"
            " LEFT JOIN outcomes AS o ON o.decision_id = d.decision_id"
            " WHERE (%(since)s::float8 IS NULL OR d.timestamp >= %(since)s)"
            " AND (%(until)s::float8 IS NULL OR d.timestamp < %(until)s)"
            " ORDER BY d.timestamp, d.seq"
        )
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            rows = conn.execute(sql, {"since": since, "until": until}).fetchall()
            vocab = {
                vid: decode_names(names)
                for vid, names in conn.execute(
                    "SELECT vocab_id, names FROM vocabularies"
                ).fetchall()
            }
        return rows, vocab

    def outcome_counts(self) -> dict[str, int]:
        """Outcome events by status (``joined``, ``duplicate``, ``late``, ``pending``...)."""
        return dict(self._read("SELECT status, count(*) FROM outcome_events GROUP BY status"))


def _event_columns(events: Sequence[OutcomeEvent]) -> list[list[Any]]:
    """The ``_EVENT_INSERT`` parameters: one list per column."""
    return [
        [e.event_id for e in events],
        [e.decision_id for e in events],
        [e.user_hash for e in events],
        [e.timestamp for e in events],
        [e.reward for e in events],
        [e.source for e in events],
        [e.order_id for e in events],
    ]


def _one_row(row: tuple[Any, ...] | None, query: str) -> tuple[Any, ...]:
    """``row`` from a query that always returns one, with a clear error if it did not."""
    if row is None:
        raise psycopg.DataError(f"{query} returned no row, expected one")
    return row
