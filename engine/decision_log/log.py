"""The durable decision log that the decision engine embeds."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.validation import check_choice, check_integer, check_number, check_positive

from .checkpointer import Checkpointer
from .hashing import hash_user_id, salt_bytes
from .pending import PendingIndex
from .records import (
    DecisionRecord,
    OutcomeReceipt,
    OutcomeRecord,
    OutcomeStatus,
    check_timestamp,
)
from .spill import SpillFile
from .store import ConnectFn
from .store_api import Store, is_postgres_url, open_store
from .writer import BatchWriter

logger = logging.getLogger(__name__)

DURABILITIES = ("batch", "sync", "fsync")
DefaultReward = float | Callable[[str], float]


class DecisionLog:
    """Durable, thread-safe log of decisions and their outcomes, in SQLite (WAL mode, one
    process) or PostgreSQL (shared by many processes; outcomes joined in the database).

    Parameters
    ----------
    path:
        SQLite database file, or a ``postgresql://`` URL; the schema is created if missing.
    durability:
        ``"batch"`` (default): a background thread starts a commit once the oldest
        buffered event is ``flush_interval / 2`` old (or ``flush_events`` are buffered),
        so each decision is committed about ``flush_interval`` after it was acknowledged,
        however fast decisions arrive. A ``kill -9`` loses at most the decisions
        acknowledged in that last window plus any time the OS (or the GIL, held by a
        descheduled thread) keeps the writer thread from running: nothing on an idle
        host, tens of milliseconds on an overloaded one.
        ``"sync"``: each append is committed before the call returns (survives the process
        being killed; concurrent callers share commits).
        ``"fsync"``: as ``"sync"`` and the WAL is fsynced at each commit (survives power
        loss; costs one fsync, 0.1 to 5 ms, per commit).
    queue_size, spill_size:
        Events held in memory waiting for the writer, and extra events held when the queue
        is full or the disk fails (default ``queue_size``); beyond both, events are dropped
        and counted. ``append_*`` never block on the disk.
    attribution_window:
        Seconds after a decision during which an outcome is attributed to it.
    default_reward:
        Reward of a decision whose window closed with no outcome: a number, or a callable
        ``action name -> reward``.
    salt:
        Secret for :meth:`hash_user` (needed only to hash raw user ids).
    spill_dir:
        Directory of the local spill file that holds batches while the store is down
        (fsynced, replayed in order when it returns; files of dead processes are adopted).
        Default: none for SQLite (memory only), ``$CARTWISE_SPILL_DIR`` or
        ``<tmp>/cartwise-spill`` for PostgreSQL.
    store_options:
        Extra arguments of the store (PostgreSQL: ``pool_size``, ``backward_window``,
        ``pending_ttl``; see :class:`~engine.decision_log.postgres.PostgresStore`).
    _connect:
        Test hook: factory of the write connection (``path -> sqlite3.Connection``).

    Example:
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.db"
    >>> with DecisionLog(path, durability="sync", salt="s3cret") as log:
    ...     rec = DecisionRecord(
    ...         timestamp=100.0, user_hash=log.hash_user("u1"), model_version="m1",
    ...         actions=("none", "coupon_5"), probabilities=(0.2, 0.8),
    ...         eligible=("none", "coupon_5"), action="coupon_5", decision_id="d1")
    ...     _ = log.append_decision(rec)
    ...     log.outcome_for_user("u1", reward=9.5, timestamp=200.0, order_id="o1").decision_id
    ...     log.append_outcome("d1", reward=1.0, timestamp=300.0).status.value
    'd1'
    'duplicate'
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "batch",
        flush_interval: float = 0.05,
        flush_events: int = 1000,
        queue_size: int = 100_000,
        spill_size: int | None = None,
        attribution_window: float = 72 * 3600,
        default_reward: DefaultReward = 0.0,
        salt: str | bytes | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        store_options: Mapping[str, Any] | None = None,
        _connect: ConnectFn | None = None,
    ) -> None:
        self.durability = check_choice(durability, "durability", DURABILITIES)
        self.flush_interval = check_positive(flush_interval, "flush_interval", high=60.0)
        self.flush_events = check_integer(flush_events, "flush_events", low=1)
        self.queue_size = check_integer(queue_size, "queue_size", low=1)
        if spill_size is not None:
            spill_size = check_integer(spill_size, "spill_size", low=0)
        self.spill_size = spill_size
        self.attribution_window = check_positive(attribution_window, "attribution_window")
        if not callable(default_reward):
            check_number(default_reward, "default_reward")
        self.default_reward = default_reward
        self._salt = None if salt is None else salt_bytes(salt)

        options = dict(store_options or {})
        if _connect is not None:
            options["connect"] = _connect
        self._store: Store = open_store(path, durability=self.durability, **options)
        self.path = self._store.location
        try:
            self._store.open()
        except self._store.errors as exc:
            if not self._store.shared:
                raise
            logger.error(
                "decision log store unreachable at start (%s); writes go to the spill file", exc
            )
        if spill_dir is None and is_postgres_url(self.path):
            spill_dir = os.environ.get("CARTWISE_SPILL_DIR") or os.path.join(
                tempfile.gettempdir(), "cartwise-spill"
            )
        self._disk = SpillFile(spill_dir, self.path) if spill_dir is not None else None
        if self._disk is not None:
            self._disk.adopt_orphans()
        self._sync = durability != "batch"
        self._closed = False
        self._count_lock = threading.Lock()
        self._outcome_lock = threading.Lock()  # check-then-buffer of outcomes is atomic
        self._pending = PendingIndex(self.attribution_window)
        self._counts = {
            "written_decisions": 0,
            "written_outcomes": 0,
            "duplicates": 0,
            "duplicate_decisions": 0,
            "unknown_ids": 0,
            "unattributed": 0,
            "defaulted": 0,
            "read_errors": 0,
            "deferred": 0,
        }
        self._checkpointer = Checkpointer(self._store.checkpoint)
        self._writer = BatchWriter(
            self._commit,
            on_committed=self._committed,
            on_dropped=self._pending.forget,
            queue_size=self.queue_size,
            spill_size=self.queue_size if spill_size is None else spill_size,
            flush_interval=self.flush_interval,
            flush_events=self.flush_events,
            disk=self._disk,
        )
        atexit.register(self.close)

    # ------------------------------------------------------------------ writes
    def hash_user(self, user_id: str) -> str:
        """Salted hash of a raw user id (what the log stores instead of the id)."""
        if self._salt is None:
            raise ValueError("salt == None: pass salt=... to DecisionLog to hash user ids")
        return hash_user_id(user_id, self._salt)

    def append_decision(self, record: DecisionRecord) -> str:
        """Log a decision; return its id. Never blocks on the disk in batch mode."""
        if not isinstance(record, DecisionRecord):
            raise ValueError(f"record == {record!r}, must be a DecisionRecord")
        self._check_open()
        self._pending.add_decision(record)
        seq = self._writer.submit(record)
        if self._sync:
            self._writer.commit_through(seq)
        return record.decision_id

    def append_outcome(
        self,
        decision_id: str,
        reward: float,
        timestamp: float,
        source: str = "reward",
        order_id: str | None = None,
    ) -> OutcomeReceipt:
        """Record the outcome of a decision. The first outcome wins; later ones and unknown
        ids are counted (unknown ids logged at WARNING) and never raise.
        """
        outcome = OutcomeRecord(decision_id, timestamp, reward, source, order_id)
        self._check_open()
        with self._outcome_lock:
            receipt, seq = self._accept(outcome)
        return self._settle(receipt, seq)

    def outcome_for_user(
        self,
        user: str,
        reward: float,
        timestamp: float,
        order_id: str | None = None,
        *,
        source: str = "event",
        hashed: bool = False,
    ) -> OutcomeReceipt:
        """Attribute an outcome to the user's most recent decision whose window contains
        ``timestamp`` (``user`` is a raw id, or a hash when ``hashed=True``).
        """
        user_hash = user if hashed else self.hash_user(user)
        if not isinstance(user_hash, str) or not user_hash:
            raise ValueError(f"user == {user!r}, must be a non-empty str")
        template = OutcomeRecord("?", timestamp, reward, source, order_id)  # validates the fields
        self._check_open()
        with self._outcome_lock:
            decision_id = self._attribute(user_hash, template.timestamp)
            if decision_id is None:
                self._bump("unattributed")
                logger.debug(
                    "outcome at %s for user %s matches no open decision", timestamp, user_hash
                )
                return OutcomeReceipt(None, OutcomeStatus.UNATTRIBUTED)
            receipt, seq = self._accept(dataclasses.replace(template, decision_id=decision_id))
        return self._settle(receipt, seq)

    def close_expired(self, now: float, *, limit: int | None = None) -> list[tuple[str, float]]:
        """Give the default reward to decisions whose window closed by ``now`` without an
        outcome; return ``[(decision_id, default_reward), ...]`` oldest first.

        Outcomes arriving later for those decisions count as duplicates, so call this with
        some grace (``now - expected event delay``) if events arrive late.
        """
        now = check_timestamp("now", now)
        if limit is not None:
            check_integer(limit, "limit", low=1)
        self._check_open()
        with self._outcome_lock:
            self._writer.flush()
            try:
                self._store.sweep()  # a shared store settles outcomes that waited for their decision
            except self._store.errors as exc:
                self._read_failed(exc)
            candidates, taken = self._pending.expired(now)  # normally empty after the flush
            try:
                for decision_id, action, closes in self._store.expired_open(now, limit):
                    candidates.setdefault(decision_id, (action, closes))
            except self._store.errors as exc:
                self._read_failed(exc)
            expired = sorted(
                (closes, did, action)
                for did, (action, closes) in candidates.items()
                if did not in taken
            )[:limit]
            defaults = [
                OutcomeRecord(did, closes, self._default_for(action), "default")
                for closes, did, action in expired
            ]
            for n, outcome in enumerate(defaults, start=1):
                self._pending.add_outcome(outcome)
                self._writer.submit(outcome)
                if n % self.flush_events == 0:
                    self._writer.flush()
            self._bump("defaulted", len(defaults))
            self._writer.flush()
        return [(outcome.decision_id, outcome.reward) for outcome in defaults]

    def flush(self) -> bool:
        """Commit everything buffered now; True if nothing is left in memory."""
        return self._writer.flush()

    def close(self) -> None:
        """Flush and release the database (also run at interpreter exit). Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if not self._writer.close():
            queued, spilled = self._writer.buffered
            on_disk = self._disk.events if self._disk is not None else 0
            logger.error(
                "decision log closed with %d events unwritten (%d more kept in the spill file %s): %s",
                queued + spilled,
                on_disk,
                self._disk.path if on_disk else None,
                self._writer.last_error,
            )
        if self._disk is not None:
            self._disk.close()
        self._checkpointer.close()
        self._store.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DecisionLog({self.path!r}, durability={self.durability!r})"

    # ------------------------------------------------------------------ reads
    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        """The decision with this id (buffered or stored), or None."""
        record = self._pending.decision(decision_id)
        if record is not None:
            return record
        try:
            return self._store.fetch_decision(decision_id)
        except self._store.errors as exc:
            self._read_failed(exc)
            return None

    def health(self) -> dict[str, Any]:
        """State and counters for monitoring (counts since this object was created).

        - ``healthy``: writer running, no failed commit waiting for a retry, no spill;
        - ``spill_file_events``: the backlog in the local spill file (events written there
          while the store was down, not yet replayed), ``spill_file`` its path;
        - ``queued`` / ``spill_buffered``: events in memory waiting for the writer / held
          after a full queue or a failed commit; ``pending_decisions`` / ``pending_outcomes``:
          of which decisions / outcomes (buffered, not yet committed);
        - ``written`` (events), ``written_decisions``, ``written_outcomes``, ``commits``;
        - ``failed_writes`` (failed commit attempts), ``last_error``, ``last_error_at``,
          ``retrying``, ``memory_fallback_events`` (events that went to the spill buffer),
          ``dropped_events`` (lost: memory bound reached), ``sync_timeouts``,
          ``read_errors``;
        - ``duplicates`` (outcomes after the first), ``duplicate_decisions``,
          ``unknown_ids``, ``unattributed`` (user outcomes with no open decision),
          ``deferred`` (shared store: outcomes for decisions not stored yet, left to the
          store's join),
          ``defaulted`` (default rewards given by :meth:`close_expired`).
        """
        stats = self._writer.stats()
        pending = self._pending.sizes()
        with self._count_lock:
            counts = dict(self._counts)
        alive = self._writer.alive
        return {
            "durability": self.durability,
            "closed": self._closed,
            "writer_alive": alive,
            "healthy": (alive or self._closed)
            and not stats["retrying"]
            and not stats["spill_buffered"]
            and not stats["spill_file_events"],
            "pending_decisions": pending[0],
            "pending_outcomes": pending[1],
            **stats,
            **counts,
        }

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self!r} is closed")

    def _settle(self, receipt: OutcomeReceipt, seq: int) -> OutcomeReceipt:
        """In sync mode, commit an accepted outcome (outside the outcome lock: group commit)."""
        if self._sync and seq:
            self._writer.commit_through(seq)
        return receipt

    def _accept(self, outcome: OutcomeRecord) -> tuple[OutcomeReceipt, int]:
        """Buffer ``outcome`` if it is the first for a known decision (outcome lock held).

        Returns the receipt and the buffer sequence number (0 when nothing was buffered).
        """
        did = outcome.decision_id
        known, has_outcome = self._pending.state(did)
        if not has_outcome and not known:
            try:
                known, has_outcome = self._store.decision_state(did)
            except (
                self._store.errors
            ) as exc:  # cannot check: keep the reward, the DB ignores duplicates
                self._read_failed(exc)
                known = True
            if (
                not known and self._store.shared
            ):  # decided elsewhere, not stored yet: the store joins it
                self._bump("deferred")
                return OutcomeReceipt(did, OutcomeStatus.DEFERRED), self._writer.submit(outcome)
        if has_outcome:
            self._bump("duplicates")
            logger.debug("duplicate outcome for decision %s ignored (first one wins)", did)
            return OutcomeReceipt(did, OutcomeStatus.DUPLICATE), 0
        if not known:
            self._bump("unknown_ids")
            logger.warning(
                "outcome for unknown decision_id %r (source %s) ignored", did, outcome.source
            )
            return OutcomeReceipt(did, OutcomeStatus.UNKNOWN), 0
        self._pending.add_outcome(outcome)
        return OutcomeReceipt(did, OutcomeStatus.ACCEPTED), self._writer.submit(outcome)

    def _attribute(self, user_hash: str, at: float) -> str | None:
        """Latest open decision of the user at time ``at``, buffered or stored.

        The buffer is read first: a decision committed in between is then in the database.
        Buffered decisions were appended after every stored one, so they win ties.
        """
        buffered = self._pending.latest_for_user(user_hash, at)
        try:
            stored = self._store.latest_for_user(user_hash, at)
        except self._store.errors as exc:
            self._read_failed(exc)
            stored = None
        if stored is not None and (buffered is None or stored[1] > buffered[0]):
            return stored[0]
        return None if buffered is None else buffered[1]

    def _default_for(self, action: str) -> float:
        if not callable(self.default_reward):
            return float(self.default_reward)
        return check_number(self.default_reward(action), f"default_reward({action!r})")

    def _commit(self, batch: Sequence[DecisionRecord | OutcomeRecord]) -> None:
        decisions = [e for e in batch if type(e) is DecisionRecord]
        outcomes = [e for e in batch if type(e) is OutcomeRecord]
        n_dec, n_out = self._store.write(decisions, outcomes, self.attribution_window)
        self._bump("written_decisions", n_dec)
        self._bump("written_outcomes", n_out)
        self._bump("duplicates", len(outcomes) - n_out)
        if n_dec < len(decisions):
            self._bump("duplicate_decisions", len(decisions) - n_dec)
            logger.warning(
                "%d decisions with an already-logged decision_id ignored", len(decisions) - n_dec
            )

    def _committed(self, batch: Sequence[DecisionRecord | OutcomeRecord]) -> None:
        self._pending.forget(batch)
        self._checkpointer.notify()

    def _bump(self, key: str, n: int = 1) -> None:
        with self._count_lock:
            self._counts[key] += n

    def _read_failed(self, exc: BaseException) -> None:
        self._bump("read_errors")
        logger.error("decision log read failed: %s", exc)
