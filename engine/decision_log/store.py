"""SQLite access for the decision log: one write, one read and one checkpoint connection.

Implements :class:`~engine.decision_log.store_api.Store` for one process.

The store knows SQL and encodings, nothing about threads or buffering. Every write is one
transaction (a single statement, or ``BEGIN IMMEDIATE`` ... ``COMMIT``); on any error it is
rolled back and the connection discarded, so a failed write never leaves a partial batch
behind and the next attempt starts from a fresh connection.

Commits only append to the write-ahead log: copying it into the database file (a
checkpoint, which fsyncs and can take tens of milliseconds) is left to
:meth:`SQLiteStore.checkpoint`, which the caller runs off the commit path. The write
connection checkpoints by itself only once the WAL holds ``WRITER_AUTOCHECKPOINT_PAGES``:
under sustained load, background checkpoints rarely finish between two commits, which the
WAL needs to start over, so it grows to that size (64 MiB) and the write connection's own
checkpoint, copying only what the background ones have not, lets it restart.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from .engine_batch import PreparedDecision
from .records import DecisionRecord, OutcomeRecord
from .schema import (
    DDL,
    DECISION_COLUMNS,
    DECISION_INSERT,
    OUTCOME_INSERT,
    SCHEMA_VERSION,
    VOCAB_INSERT,
    padded_chunks,
    values_sql,
)
from .store_rows import VocabularyCache, decision_rows, record_of_row

logger = logging.getLogger(__name__)

#: Signature of the connection factory: ``connect(path) -> sqlite3.Connection``.
ConnectFn = Callable[[str], sqlite3.Connection]
T = TypeVar("T")

BUSY_TIMEOUT_S = 5.0
# While another process holds the write lock, SQLite's busy handler sleeps ever longer
# (1, 2, 5, 10, 15, 20, 25, ... 100 ms), which can leave a batch waiting 100 ms after the lock
# was freed. The write connection lets it sleep only this long and polls again itself.
WRITE_BUSY_POLL_MS = 3
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
WRITER_AUTOCHECKPOINT_PAGES = 16_384  # SQLite's default is 1,000 (4 MB of 4 KiB pages)


def default_connect(path: str) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode, usable from any thread (callers serialise access)."""
    return sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )


class SQLiteStore:
    """Reads and writes one decision-log database file.

    Args:
        path: Database file (created if missing).
        synchronous: SQLite ``synchronous`` level of the write connection: ``"FULL"`` fsyncs the WAL
            at every commit (survives power loss), ``"NORMAL"`` survives a process crash.
        connect: Factory for the *write* connection; tests inject failures through it.
    """

    shared = False
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(
        self, path: str, *, synchronous: str = "NORMAL", connect: ConnectFn | None = None
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous == {synchronous!r}, must be 'FULL' or 'NORMAL'")
        self.path = self.location = path
        self.synchronous = synchronous
        self._connect = connect or default_connect
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._checkpoint_lock = threading.Lock()
        self._vocab = VocabularyCache(
            self._read, "SELECT names FROM vocabularies WHERE vocab_id = ?", repr(path)
        )
        self._stored_vocab: set[str] = set()  # vocab ids known to be committed

    # ------------------------------------------------------------------ connections
    def open(self) -> None:
        """Create the schema if needed and check its version (raises on failure)."""
        conn = self._write_connection()
        version = _when_unlocked(conn.execute, "PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self._discard_writer()
            raise ValueError(
                f"{self.path!r} has schema version {version}, this code reads <= {SCHEMA_VERSION}"
            )
        if version < SCHEMA_VERSION:
            try:
                _when_unlocked(
                    conn.executescript,
                    f"BEGIN IMMEDIATE; {DDL} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
                )
            except BaseException:
                self._discard_writer()
                raise

    def _write_connection(self) -> sqlite3.Connection:
        if self._writer is None:
            conn = self._connect(self.path)
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    logger.warning("journal_mode == %r for %s, expected 'wal'", mode, self.path)
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
                conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
                conn.execute(f"PRAGMA busy_timeout = {WRITE_BUSY_POLL_MS}")
            except BaseException:
                conn.close()
                raise
            self._writer = conn
        return self._writer

    def _discard_writer(self) -> None:
        conn, self._writer = self._writer, None
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:  # the connection is being thrown away anyway
            logger.debug("rollback failed: %s", exc)
        try:
            conn.close()
        except sqlite3.Error as exc:
            logger.debug("close failed: %s", exc)

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._read_lock:
            if self._reader is None:
                self._reader = default_connect(self.path)
                self._reader.execute("PRAGMA query_only = 1")
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error:
                self._reader.close()
                self._reader = None
                raise

    def checkpoint(self) -> tuple[int, int]:
        """Copy committed WAL frames into the database file without blocking writers.

        Runs ``PRAGMA wal_checkpoint(PASSIVE)``; returns (frames in the WAL, frames copied).
        Raises ``sqlite3.Error`` on failure (the connection is then reopened next time).
        """
        with self._checkpoint_lock:
            if self._checkpointer is None:
                self._checkpointer = default_connect(self.path)
            try:
                _busy, frames, copied = self._checkpointer.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).fetchone()
            except sqlite3.Error:
                self._checkpointer.close()
                self._checkpointer = None
                raise
        return frames, copied

    def close(self) -> None:
        """Close the write, read and checkpoint connections."""
        self._discard_writer()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None

    # ------------------------------------------------------------------ writes
    def write(
        self,
        decisions: Sequence[DecisionRecord | PreparedDecision],
        outcomes: Sequence[OutcomeRecord],
        window: float,
    ) -> tuple[int, int]:
        """Write a batch in one transaction; return (decisions inserted, outcomes inserted).

        Decisions whose id is already stored and outcomes of decisions that already have
        one are ignored (not counted as inserted). On error the transaction is rolled back
        and the exception re-raised.
        """
        rows, vocab = decision_rows(decisions, window, self._stored_vocab)
        new_vocab = [(vid, kind, names) for vid, (kind, names) in vocab.items()]
        # (statement, parameters, counts as: 0 vocabulary, 1 decisions, 2 outcomes); the
        # outcome_resolves_decision trigger marks the decisions of new outcomes resolved
        statements = [
            *((sql, params, 0) for sql, params in _statements(VOCAB_INSERT, new_vocab)),
            *((sql, params, 1) for sql, params in _statements(DECISION_INSERT, rows)),
            *(
                (sql, params, 2)
                for sql, params in _statements(
                    OUTCOME_INSERT,
                    [
                        (o.decision_id, o.timestamp, o.reward, o.source, o.order_id)
                        for o in outcomes
                    ],
                )
            ),
        ]
        inserted = [0, 0, 0]
        conn = self._write_connection()
        try:
            if len(statements) == 1:  # one statement is its own atomic transaction
                sql, params, kind = statements[0]
                inserted[kind] += _when_unlocked(conn.execute, sql, params).rowcount
            elif statements:
                _when_unlocked(conn.execute, "BEGIN IMMEDIATE")
                for sql, params, kind in statements:
                    inserted[kind] += conn.execute(sql, params).rowcount
                conn.execute("COMMIT")
        except BaseException:
            self._discard_writer()
            raise
        self._stored_vocab.update(vid for vid, _, _ in new_vocab)
        return inserted[1], inserted[2]

    # ------------------------------------------------------------------ reads
    def decision_state(self, decision_id: str) -> tuple[bool, bool]:
        """(decision stored?, outcome stored?) for one id."""
        row = self._read(
            "SELECT EXISTS (SELECT 1 FROM decisions WHERE decision_id = ?),"
            " EXISTS (SELECT 1 FROM outcomes WHERE decision_id = ?)",
            (decision_id, decision_id),
        )[0]
        return bool(row[0]), bool(row[1])

    def latest_for_user(self, user_hash: str, at: float) -> tuple[str, float] | None:
        """Most recent stored decision of ``user_hash`` whose window contains time ``at``."""
        rows = self._read(
            "SELECT decision_id, timestamp FROM decisions"
            " WHERE user_hash = ? AND timestamp <= ? AND window_closes > ?"
            " ORDER BY timestamp DESC, rowid DESC LIMIT 1",
            (user_hash, at, at),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def expired_open(self, now: float, limit: int | None = None) -> list[tuple[str, str, float]]:
        """(decision_id, action, window_closes) of stored decisions closed unrewarded by ``now``."""
        return self._read(
            "SELECT d.decision_id, d.action, d.window_closes FROM decisions AS d"
            " WHERE d.resolved = 0 AND d.window_closes <= ?"
            " AND NOT EXISTS (SELECT 1 FROM outcomes AS o WHERE o.decision_id = d.decision_id)"
            " ORDER BY d.window_closes LIMIT ?",
            (now, -1 if limit is None else limit),
        )

    def fetch_decision(self, decision_id: str) -> DecisionRecord | None:
        """Rebuild a stored decision (features come back rounded to float32)."""
        rows = self._read(
            f"SELECT {DECISION_COLUMNS} FROM decisions WHERE decision_id = ?", (decision_id,)
        )
        return record_of_row(rows[0], self._vocab.names) if rows else None

    def sweep(self) -> int:
        """Nothing waits in a one-process store: outcomes are checked before they are written."""
        return 0


def _when_unlocked(call: Callable[..., T], *args: object) -> T:
    """``call(*args)``, retried for up to ``BUSY_TIMEOUT_S`` while another connection locks.

    Only for calls that change nothing when they fail busy (a lone statement,
    ``BEGIN IMMEDIATE``, a script that starts with it).
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return call(*args)
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise


def _statements(statement: tuple[str, int], rows: Sequence[tuple]) -> list[tuple[str, list]]:
    """Multi-row INSERT statements (one per padded chunk) with their flat parameter lists.

    Writing few statements matters: each one releases and re-acquires the GIL, and with
    busy producer threads every re-acquisition can wait a whole switch interval.
    """
    head, width = statement
    return [
        (values_sql(head, width, len(chunk)), [value for row in chunk for value in row])
        for chunk in padded_chunks(rows)
    ]


def check_path(path: str | os.PathLike[str]) -> str:
    """Validate a database path (a real file in an existing directory) and return it as str."""
    text = os.fspath(path)
    if not isinstance(text, str) or not text or text == ":memory:" or text.startswith("file:"):
        raise ValueError(
            f"path == {path!r}, must be a file path (in-memory databases cannot be shared)"
        )
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise ValueError(f"path == {path!r}: directory {parent!r} does not exist")
    return text
