"""The durable decision log that the decision engine embeds."""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.validation import check_choice, check_integer, check_number, check_positive

from .checkpointer import Checkpointer
from .counters import LogCounters
from .engine_batch import PreparedDecision, prepare_batch
from .engine_decision import EngineDecision
from .hashing import hash_user_id, salt_bytes
from .outcomes import OutcomeDesk
from .pending import PendingIndex
from .records import DecisionRecord, OutcomeReceipt, OutcomeRecord, check_timestamp
from .spill import SpillFile
from .store import ConnectFn
from .store_api import Store, is_postgres_url, open_store
from .writer import BatchWriter

logger = logging.getLogger(__name__)

#: Default ``flush_interval`` (seconds) of ``"batch"`` durability with SQLite. Each commit's rows
#: are built on the writer thread holding the GIL, so a ``decide`` that arrives during that burst
#: waits for it: shorter intervals mean smaller batches and shorter waits (the checkout p99), at
#: the cost of more commits. 20 ms measured best on the checkout benchmark (docs/benchmarks.md).
DEFAULT_FLUSH_INTERVAL = 0.02
#: The same for PostgreSQL, unchanged at 50 ms: there a commit is a round trip to a server that
#: every process shares, and the shorter cadence was measured with SQLite only.
DEFAULT_FLUSH_INTERVAL_POSTGRES = 0.05


def default_flush_interval(path: str | os.PathLike[str]) -> float:
    """The ``flush_interval`` a :class:`DecisionLog` of ``path`` uses unless told otherwise.

    >>> default_flush_interval("log.db"), default_flush_interval("postgresql://db/x")
    (0.02, 0.05)
    """
    if is_postgres_url(path):
        return DEFAULT_FLUSH_INTERVAL_POSTGRES
    return DEFAULT_FLUSH_INTERVAL


DURABILITIES = ("batch", "sync", "fsync")
DefaultReward = float | Callable[[str], float]


class DecisionLog:
    """Durable, thread-safe log of decisions and their outcomes.

    The log lives in SQLite (WAL mode, one process) or PostgreSQL (shared by many processes;
    outcomes joined in the database).

    Args:
        path: SQLite database file, or a ``postgresql://`` URL; the schema is created if missing.
        durability: One of three modes.
            ``"batch"`` (default): a background thread starts a commit once the oldest buffered
            event is ``flush_interval / 2`` old (or ``flush_events`` are buffered), so each
            decision is committed about ``flush_interval`` after it was acknowledged, however
            fast decisions arrive. A ``kill -9`` loses at most the decisions acknowledged in
            that last window plus any time the OS (or the GIL, held by a descheduled thread)
            keeps the writer thread from running: nothing on an idle host, tens of
            milliseconds on an overloaded one.
            ``"sync"``: each append is committed before the call returns (survives the process
            being killed; concurrent callers share commits).
            ``"fsync"``: as ``"sync"`` and the WAL is fsynced at each commit (survives power
            loss; costs one fsync, 0.1 to 5 ms, per commit).
        flush_interval, flush_events: ``"batch"`` cadence (default: 20 ms for SQLite, 50 ms
            for PostgreSQL, :func:`default_flush_interval`; and 1,000 events). A longer
            interval means fewer, larger commits and longer waits for a ``decide`` that meets
            one.
        queue_size, spill_size: Events held in memory waiting for the writer, and extra events held
            when the queue is full or the disk fails (default ``queue_size``); beyond both, events
            are dropped and counted. ``append_*`` never block on the disk.
        attribution_window: Seconds after a decision during which an outcome is attributed to it.
        default_reward: Reward of a decision whose window closed with no outcome: a number, or a
            callable ``action name -> reward``.
        salt: Secret for :meth:`hash_user` (needed only to hash raw user ids).
        spill_dir: Directory of the local spill file that holds batches while the store is down
            (fsynced, replayed in order when it returns; files of dead processes are adopted).
            Default: none for SQLite (memory only), ``$CARTWISE_SPILL_DIR`` or
            ``<tmp>/cartwise-spill`` for PostgreSQL.
        store_options: Extra arguments of the store (PostgreSQL: ``pool_size``, ``backward_window``,
            ``pending_ttl``; see :class:`~engine.decision_log.postgres.PostgresStore`).
        _connect: Test hook: factory of the write connection (``path -> sqlite3.Connection``).

    Example:
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
        flush_interval: float | None = None,
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
        if flush_interval is None:
            flush_interval = default_flush_interval(path)
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
        self._pending = PendingIndex(self.attribution_window)
        self._counters = LogCounters()
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
            prepare=self._prepare,
        )
        self._outcomes = OutcomeDesk(
            self._store,
            self._pending,
            self._writer,
            self._counters,
            default_for=self._default_for,
            flush_events=self.flush_events,
            sync=self._sync,
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

    def append_engine_decision(self, entry: EngineDecision) -> None:
        """Log a decision of :class:`~engine.engine.DecisionEngine` (its hot path).

        The record is built and checked by the writer thread (:meth:`EngineDecision.to_record`);
        until then the buffered entry answers outcomes and reads. Never blocks on the disk in
        batch mode.
        """
        if self._closed:
            self._check_open()
        self._pending.add_decision(entry)
        seq = self._writer.submit(entry)
        if self._sync:
            self._writer.commit_through(seq)

    def append_outcome(
        self,
        decision_id: str,
        reward: float,
        timestamp: float,
        source: str = "reward",
        order_id: str | None = None,
    ) -> OutcomeReceipt:
        """Record the outcome of a decision.

        The first outcome wins; later ones and unknown ids are counted (unknown ids logged at
        WARNING) and never raise.
        """
        outcome = OutcomeRecord(decision_id, timestamp, reward, source, order_id)
        self._check_open()
        return self._outcomes.record(outcome)

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
        """Attribute an outcome to the user's most recent decision open at ``timestamp``.

        ``user`` is a raw id, or a hash when ``hashed=True``; the decision's attribution
        window must contain ``timestamp``.
        """
        user_hash = user if hashed else self.hash_user(user)
        if not isinstance(user_hash, str) or not user_hash:
            raise ValueError(f"user == {user!r}, must be a non-empty str")
        template = OutcomeRecord("?", timestamp, reward, source, order_id)  # validates the fields
        self._check_open()
        return self._outcomes.record_for_user(user_hash, template)

    def close_expired(self, now: float, *, limit: int | None = None) -> list[tuple[str, float]]:
        """Give the default reward to decisions whose window closed by ``now`` unrewarded.

        Outcomes arriving later for those decisions count as duplicates, so call this with
        some grace (``now - expected event delay``) if events arrive late.

        Returns:
            ``[(decision_id, default_reward), ...]``, oldest first, at most ``limit``.
        """
        now = check_timestamp("now", now)
        if limit is not None:
            check_integer(limit, "limit", low=1)
        self._check_open()
        return self._outcomes.close_expired(now, limit)

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
            disk = self._disk
            on_disk = disk.events if disk is not None else 0
            logger.error(
                "decision log closed with %d events unwritten "
                "(%d more kept in the spill file %s): %s",
                queued + spilled,
                on_disk,
                disk.path if disk is not None and on_disk else None,
                self._writer.last_error,
            )
        if self._disk is not None:
            self._disk.close()
        self._checkpointer.close()
        self._store.close()

    def __enter__(self) -> DecisionLog:
        """Use the log as a context manager that closes it on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the log."""
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
            self._counters.read_failed(exc)
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
          ``defaulted`` (default rewards given by :meth:`close_expired`),
          ``invalid_decisions`` (engine decisions whose record failed its checks: not logged).
        """
        stats = self._writer.stats()
        pending = self._pending.sizes()
        counts = self._counters.snapshot()
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

    def _default_for(self, action: str) -> float:
        """Reward of an unrewarded decision of ``action`` (``default_reward`` read each time)."""
        if not callable(self.default_reward):
            return float(self.default_reward)
        return check_number(self.default_reward(action), f"default_reward({action!r})")

    def _prepare(self, events: list[Any]) -> list[Any]:
        """Check the engine's decisions in ``events`` and build their rows (the writer thread).

        See :func:`~engine.decision_log.engine_batch.prepare_batch`. A decision whose record
        fails its checks (a learner or feature bug: the engine's invariants make it impossible
        otherwise) is left out, counted as ``invalid_decisions`` and logged at ERROR.
        """
        out, built, invalid = prepare_batch(events, self.attribution_window)
        if built:
            self._pending.replace(built)
        if invalid:
            for entry, reason in invalid:
                logger.error(
                    "decision %s not logged: its record is invalid: %s", entry.decision_id, reason
                )
            self._pending.forget([entry for entry, _ in invalid])
            self._counters.bump("invalid_decisions", len(invalid))
        return out

    def _commit(self, batch: Sequence[PreparedDecision | DecisionRecord | OutcomeRecord]) -> None:
        decisions = [e for e in batch if type(e) is PreparedDecision or type(e) is DecisionRecord]
        outcomes = [e for e in batch if type(e) is OutcomeRecord]
        n_dec, n_out = self._store.write(decisions, outcomes, self.attribution_window)
        bump = self._counters.bump
        bump("written_decisions", n_dec)
        bump("written_outcomes", n_out)
        bump("duplicates", len(outcomes) - n_out)
        if n_dec < len(decisions):
            bump("duplicate_decisions", len(decisions) - n_dec)
            logger.warning(
                "%d decisions with an already-logged decision_id ignored", len(decisions) - n_dec
            )

    def _committed(
        self, batch: Sequence[PreparedDecision | DecisionRecord | OutcomeRecord]
    ) -> None:
        self._pending.forget(batch)
        self._checkpointer.notify()
