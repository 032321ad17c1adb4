"""Buffered, batched, failure-tolerant hand-off of events to a commit function.

Events enter a bounded in-memory queue. A commit takes *everything* buffered (so order is
kept within one transaction) and calls ``commit(batch)``. A background thread commits by
age: it starts a commit once the oldest buffered event has waited half of
``flush_interval``, leaving the other half for the commit itself, so every event is
committed about ``flush_interval`` seconds after it was submitted, however busy the queue
(later only when the thread is kept from running: an overloaded host, the GIL).
When commits take longer than that (a loaded machine), the thread commits back to back and
batches hold what arrived during the previous commit. It also commits as soon as
``flush_events`` are queued, and at once when a caller waits in
:meth:`BatchWriter.commit_through` (sync mode); callers waiting together share one commit
(group commit). Producers never wait for a commit: :meth:`BatchWriter.submit` only appends
to the queue.

When the queue is full, or a commit fails (disk full, I/O error, read-only file), events
go to a bounded spill buffer that later commits retry first, with exponential back-off;
beyond that bound events are dropped and counted. Nothing here ever raises into a caller
because of the storage.

With a :class:`~engine.decision_log.spill.SpillFile` (``disk=``), a batch the store cannot
take goes to that file instead (fsynced, so it counts as committed for sync callers);
while the file holds a backlog, new batches are appended behind it and the file is
replayed in order before anything else is written.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spill import SpillFile

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 2.0  # longest pause between retries while commits fail
SYNC_WAIT_S = 5.0  # longest a sync caller waits for its commit (SQLite's busy timeout is 5 s too)


class BatchWriter:
    """Feeds ``commit(batch)`` from a bounded buffer, in the background or synchronously.

    Args:
        commit: Writes a list of events in one transaction; raises on failure.
        on_committed, on_dropped: Called with the events just committed / dropped (outside the
            buffer lock).
        queue_size, spill_size: Bounds of the normal queue and of the spill buffer (events held
            after the queue was full or a commit failed).
        flush_interval, flush_events: Background commit cadence: a commit starts once the oldest
            buffered event is ``flush_interval / 2`` seconds old, or sooner once ``flush_events``
            events are queued.
        disk: The spill file for batches the store cannot take (see the module docstring).
        prepare: Turns the events taken from the queue into what ``commit`` writes (called by
            the committing thread, outside the buffer lock, before a commit or a spill; it must
            not raise: events it leaves out are gone).
    """

    def __init__(
        self,
        commit: Callable[[list[Any]], None],
        *,
        on_committed: Callable[[Sequence[Any]], None],
        on_dropped: Callable[[Sequence[Any]], None],
        queue_size: int,
        spill_size: int,
        flush_interval: float,
        flush_events: int,
        name: str = "decision-log-writer",
        disk: SpillFile | None = None,
        prepare: Callable[[list[Any]], list[Any]] | None = None,
    ) -> None:
        self._commit = commit
        self._prepare = prepare
        self._on_committed = on_committed
        self._on_dropped = on_dropped
        self._queue_size = queue_size
        self._spill_size = spill_size
        self._flush_interval = flush_interval
        self._flush_events = flush_events
        self._commit_after = flush_interval / 2.0  # age of the oldest event that starts a commit
        self._lock = threading.Lock()  # guards the buffers and counters below
        self._wake = threading.Condition(self._lock)  # wakes the background thread
        self._done = threading.Condition(self._lock)  # a commit attempt finished
        self._write_lock = threading.Lock()  # one commit at a time
        self._queue: collections.deque[Any] = collections.deque()
        self._spill: collections.deque[Any] = collections.deque()
        self._seq = 0  # events submitted so far
        self._oldest_at = 0.0  # monotonic time the queue last went from empty to non-empty
        self._committed_seq = 0  # every event with seq <= this is committed or dropped
        self._attempted_seq = 0  # every event with seq <= this went through a commit attempt
        self._sync_wanted = False  # a caller waits for a commit (sync mode)
        self._retry_at = 0.0
        self._backoff = flush_interval
        self._stopping = False
        self._disk = disk
        # committed, spilled, dropped, failed_writes, commits, ...
        self.counts: collections.Counter[str] = collections.Counter()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_commit_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ producers
    def submit(self, event: Any) -> int:
        """Buffer one event; return its sequence number (for :meth:`commit_through`)."""
        dropped = False
        with self._lock:
            self._seq += 1
            seq = self._seq
            queue = self._queue
            if not queue:  # the writer waits for a first event, then for its age
                self._oldest_at = time.monotonic()
                queue.append(event)
                self._wake.notify()
            elif len(queue) < self._queue_size:
                queue.append(event)
                if len(queue) == self._flush_events:
                    self._wake.notify()
            elif len(self._spill) < self._spill_size:
                self._spill.append(event)
                self.counts["spilled"] += 1
            else:
                self.counts["dropped"] += 1
                dropped = True
        if dropped:
            self._report_drop([event])
        return seq

    def commit_through(self, seq: int) -> bool:
        """Wait until event ``seq`` is committed (sync mode); False if storage is failing.

        The background thread commits everything queued at once, so callers waiting at
        the same time share one transaction (group commit). While commits are failing
        (back-off), return at once, and never wait more than ``SYNC_WAIT_S``: the event
        stays buffered and is retried later.
        """
        deadline = time.monotonic() + SYNC_WAIT_S
        with self._lock:
            while self._thread.is_alive() and not self._stopping:
                now = time.monotonic()
                if self._committed_seq >= seq:
                    return True
                if self._attempted_seq >= seq or (now < self._retry_at and self._disk is None):
                    return False
                if now >= deadline:  # storage hangs: stop waiting, the event stays queued
                    self.counts["sync_timeouts"] += 1
                    return False
                self._sync_wanted = True
                self._wake.notify()
                self._done.wait(min(deadline - now, 1.0))
        with self._write_lock:  # no background thread (closing): commit in this thread
            if self._committed_seq < seq:
                self._drain(force=False)
            return self._committed_seq >= seq

    def flush(self) -> bool:
        """Commit everything buffered now, ignoring back-off; True if nothing is left."""
        with self._write_lock:
            return self._drain(force=True)

    @property
    def buffered(self) -> tuple[int, int]:
        """(events in the queue, events in the spill buffer)."""
        with self._lock:
            return len(self._queue), len(self._spill)

    def stats(self) -> dict[str, Any]:
        """A consistent snapshot of the counters and buffer sizes."""
        disk = self._disk
        with self._lock:
            return {
                "spill_file_events": disk.events if disk is not None else 0,
                "spill_file": str(disk.path) if disk is not None else None,
                "queued": len(self._queue),
                "spill_buffered": len(self._spill),
                "written": self.counts["committed"],
                "commits": self.counts["commits"],
                "failed_writes": self.counts["failed_writes"],
                "memory_fallback_events": self.counts["spilled"],
                "dropped_events": self.counts["dropped"],
                "sync_timeouts": self.counts["sync_timeouts"],
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "last_commit_at": self.last_commit_at,
                "retrying": self._retry_at > 0.0,
            }

    @property
    def alive(self) -> bool:
        """Whether the background writer thread is running."""
        return self._thread.is_alive()

    def close(self, timeout: float = 10.0) -> bool:
        """Stop the background thread and commit the rest; True if nothing stayed unwritten."""
        with self._lock:
            self._stopping = True
            self._wake.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return self.flush()

    # ------------------------------------------------------------------ commit
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._commit_due():
                    if self._stopping:
                        return
                    self._wake.wait(self._wait_time())
                if self._stopping:
                    return
            try:
                with self._write_lock:
                    self._drain(force=False)
            except Exception:  # a bug in a callback must not stop the writer
                logger.exception("decision log writer: unexpected error")

    def _commit_due(self) -> bool:
        """Whether the background thread should commit now (caller holds the lock)."""
        if self._stopping:
            return False
        if not self._queue and not self._spill and not self._on_disk():
            self._sync_wanted = False
            return False
        if self._backing_off():
            return False
        return (
            self._sync_wanted
            or len(self._queue) >= self._flush_events
            or not self._queue  # only retries of failed events are left
            or time.monotonic() - self._oldest_at >= self._commit_after
        )

    def _wait_time(self) -> float | None:
        """How long the background thread may sleep before a commit can be due (lock held)."""
        now = time.monotonic()
        if not self._queue and not self._spill and not self._on_disk():
            return None  # idle: the next submit wakes the thread
        if self._backing_off():
            return self._retry_at - now
        return max(self._oldest_at + self._commit_after - now, 0.0)

    def _on_disk(self) -> int:
        """Events waiting in the spill file for the store to come back (caller holds the lock)."""
        return self._disk.events if self._disk is not None else 0

    def _backing_off(self) -> bool:
        """Storage is failing and nothing is due before the back-off ends (caller holds the lock).

        Without a spill file everything waits for the back-off; with one, new events still go to
        the file on time, and only the replay of the file and of failed events waits.
        """
        if time.monotonic() >= self._retry_at:
            return False
        return self._disk is None or not self._queue

    def _drain(self, force: bool) -> bool:
        """Commit all buffered events (caller holds the write lock)."""
        backing_off = not force and time.monotonic() < self._retry_at
        if backing_off and self._disk is None:
            return False
        with self._lock:
            if (
                not self._queue
                and not self._spill
                and not (self._disk is not None and self._disk.events)
            ):
                return True
            from_spill, from_queue = list(self._spill), list(self._queue)
            self._spill.clear()
            self._queue.clear()
            self._sync_wanted = False
            seq = self._seq
        if self._prepare is not None and from_queue:
            from_queue = self._prepare(from_queue)
        batch = from_spill + from_queue
        if self._disk is not None:
            return self._drain_with_disk(self._disk, batch, len(from_queue), seq, backing_off)
        try:
            self._commit(batch)
        except Exception as exc:  # storage errors, and anything else: never lose the batch silently
            self._commit_failed(batch, len(from_queue), exc, seq)
            return False
        self._committed(batch, seq)
        return True

    def _drain_with_disk(
        self, disk: SpillFile, batch: list[Any], n_new: int, seq: int, backing_off: bool
    ) -> bool:
        """Commit ``batch`` through the spill file ``disk`` (caller holds the write lock).

        With no backlog on disk the batch is committed directly; otherwise (or when that fails)
        it is parked in the spill file and, unless backing off, the file is replayed in order.
        """
        if not disk.events and not backing_off:
            try:
                self._commit(batch)
            except Exception as exc:  # park it; the next drain replays it after the back-off
                if self._park(disk, batch, seq) is None:
                    self._failed(exc)
                else:
                    self._commit_failed(batch, n_new, exc, seq)
                return False
            self._committed(batch, seq)
            return True
        error = self._park(disk, batch, seq) if batch else None
        if error is not None:  # disk failing too: hold the batch in memory
            self._commit_failed(batch, n_new, error, seq)
            return False
        if backing_off:
            return False
        replayed = 0
        try:
            for offset, events in disk.frames(max(self._flush_events, 1)):
                self._commit(events)
                disk.replayed(offset, len(events))
                replayed += len(events)
        except Exception as exc:
            self._failed(exc)
            return False
        disk.clear()
        with self._lock:
            self.counts["commits"] += 1
            self.counts["replayed"] += replayed
            self.last_commit_at = time.time()
            self._backoff = self._flush_interval
            self._retry_at = 0.0
        if replayed:
            logger.warning("decision log: replayed %d events from the spill file", replayed)
        return True

    def _park(self, disk: SpillFile, batch: list[Any], seq: int) -> OSError | None:
        """Append ``batch`` to ``disk`` (fsynced); None once it is safely there, else the error."""
        try:
            disk.append(batch)
        except OSError as exc:
            logger.error("decision log spill file write failed: %s", exc)
            return exc
        with self._lock:
            self._committed_seq = self._attempted_seq = seq
            self._done.notify_all()
            self.counts["spill_file_written"] += len(batch)
        self._on_committed(batch)
        return None

    def _failed(self, exc: Exception) -> None:
        """Record a failed commit (its events are safe on disk) and schedule a retry."""
        with self._lock:
            self.counts["failed_writes"] += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.last_error_at = time.time()
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2.0, MAX_BACKOFF_S)
            backlog = self._on_disk()
        logger.error(
            "decision log write failed (%s); %d events held in the spill file",
            self.last_error,
            backlog,
        )

    def _committed(self, batch: list[Any], seq: int) -> None:
        now = time.time()
        with self._lock:
            self._committed_seq = self._attempted_seq = seq
            self._done.notify_all()
            self.counts["committed"] += len(batch)
            self.counts["commits"] += 1
            self.last_commit_at = now
            self._backoff = self._flush_interval
            self._retry_at = 0.0
        self._on_committed(batch)

    def _commit_failed(self, batch: list[Any], n_new: int, exc: Exception, seq: int) -> None:
        with self._lock:
            self._attempted_seq = seq
            self._done.notify_all()
            self.counts["failed_writes"] += 1
            self.counts["spilled"] += n_new
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.last_error_at = time.time()
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2.0, MAX_BACKOFF_S)
            held = batch + list(self._spill)  # failed batch first: it is the oldest
            dropped = held[self._spill_size :]
            self._spill = collections.deque(held[: self._spill_size])
            if dropped:
                self.counts["dropped"] += len(dropped)
            n_held = len(self._spill) + len(self._queue)
        logger.error(
            "decision log write failed (%s); %d events held in memory", self.last_error, n_held
        )
        if dropped:
            self._report_drop(dropped)

    def _report_drop(self, events: Sequence[Any]) -> None:
        total = self.counts["dropped"]
        if total == len(events) or total // 10_000 != (total - len(events)) // 10_000:
            logger.error("decision log memory buffer full: %d events dropped so far", total)
        self._on_dropped(events)
