"""Contact caps across processes: a per-shopper row of contact times, claimed atomically.

A shopper may be contacted by any process of a store, so the cap counts, within the window,
the contacts in the context's history (what checkout knows) together with every contact any
process has claimed in the store (``contact_caps``: one row per user hash with the times of its
contacts), each instant once. Before an engine lets a contact action be sampled, it claims a
slot with one statement::

    INSERT ... ON CONFLICT (user_hash) DO UPDATE SET times = <times in window> || now
    WHERE <distinct times in window, history included> < cap RETURNING 1

which PostgreSQL runs under the row's lock, so two processes can never both take the last slot.
Contacts stamped after ``now`` (another process's clock, or carts decided out of order) count
too: the cap holds over every contact since ``now - window``.
If the decision then samples ``none``, the slot is given back (one more statement, sent by a
background thread together with the other releases queued by then, in one pipeline: one round
trip for all of them). A decision with no contact action eligible costs nothing; one with a
contact action eligible costs one round trip on the decision's path.

If the store cannot be reached, :meth:`ContactCaps.claim` returns None and the engine falls
back to the per-process cap (the context's history and its own recent decisions): other actions
go on; the store is tried again after ``retry_seconds``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import partial
from typing import Any

import psycopg
import psycopg_pool

from engine.decision_log.postgres import CONNECT_TIMEOUT_S, migrate

__all__ = ["ContactCaps"]

logger = logging.getLogger(__name__)

RELEASE_BATCH = 256
"""Most queued releases sent together, as one pipeline (one round trip)."""

_CLAIM = (
    "INSERT INTO contact_caps AS c (user_hash, times)"
    " SELECT %(u)s, ARRAY[%(t)s]::float8[]"
    " WHERE (SELECT count(DISTINCT x) FROM unnest(%(seen)s::float8[]) AS x"
    "        WHERE x >= %(since)s) < %(cap)s"
    " ON CONFLICT (user_hash) DO UPDATE SET times = array_append(ARRAY("
    "   SELECT x FROM unnest(c.times) AS x WHERE x >= %(since)s), %(t)s)"
    " WHERE (SELECT count(DISTINCT x) FROM unnest(c.times || %(seen)s::float8[]) AS x"
    "        WHERE x >= %(since)s) < %(cap)s"
    " RETURNING 1"
)
_RELEASE = (
    "UPDATE contact_caps SET times = times[:array_position(times, %(t)s) - 1]"
    " || times[array_position(times, %(t)s) + 1:]"
    " WHERE user_hash = %(u)s AND array_position(times, %(t)s) IS NOT NULL"
)


def _configure(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    # a slot is one small row update: do not wait for the WAL flush (a server crash may lose
    # the last slots claimed, never corrupt the table), which would cost a disk sync per decision
    conn.execute("SET synchronous_commit = off")


class ContactCaps:
    """Claims and releases contact slots of shoppers in a store shared by many processes.

    Args:
        url: the ``postgresql://`` store.
        pool_size: most connections (decisions of several threads claim at once).
        retry_seconds: how long the store is left alone after a failure.
        timeout: longest wait for a connection before a claim counts as failed. A claim is on
            the decision's path, so this bounds how long ``decide`` can wait when the store
            is unreachable (the pool then has no connection to hand out); a healthy claim
            takes about a millisecond.
    """

    def __init__(
        self, url: str, *, pool_size: int = 4, retry_seconds: float = 5.0, timeout: float = 0.25
    ) -> None:
        self.url = url
        self.retry_seconds = retry_seconds
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=_configure,
            name="cartwise-contact-caps",
        )
        self._pool.open(wait=False)
        self._quiet_until = 0.0
        self._lock = threading.Lock()
        self.counts = {"claimed": 0, "capped": 0, "released": 0, "store_errors": 0}
        self._releases: queue.Queue[tuple[str, float] | None] = queue.Queue()
        self._releaser = threading.Thread(
            target=self._release_loop, name="cartwise-contact-release", daemon=True
        )
        self._releaser.start()

    def claim(
        self, user_hash: str, now: float, window: float, cap: int, seen: Sequence[float]
    ) -> bool | None:
        """Take one contact slot of ``user_hash`` at ``now``.

        ``seen`` are the context's own contact times. True: claimed; False: the cap is reached
        (counting every process); None: the store is unavailable (decide by the local cap).
        """
        params = {"u": user_hash, "t": now, "since": now - window, "cap": cap, "seen": list(seen)}
        result = self._run(lambda conn: conn.execute(_CLAIM, params).fetchone() is not None)
        if result is None:
            return None
        self._count("claimed" if result else "capped")
        return result

    def release(self, user_hash: str, now: float) -> None:
        """Give back a slot claimed at ``now`` (the decision did not contact the shopper).

        Done by a background thread, off the decision's path: until then the slot stays taken,
        which can only refuse a contact, never allow one too many.
        """
        self._releases.put((user_hash, now))

    def _release_loop(self) -> None:
        while True:
            batch = [self._releases.get()]
            while batch[-1] is not None and len(batch) < RELEASE_BATCH:
                try:
                    batch.append(self._releases.get_nowait())
                except queue.Empty:
                    break
            items = [item for item in batch if item is not None]
            if items and self._run(partial(_send_releases, items=items)):
                self._count("released", len(items))
            if batch[-1] is None:
                return

    def state(self) -> dict[str, int]:
        """Counters: claimed, capped (refused by the cap), released, store_errors."""
        with self._lock:
            return dict(self.counts)

    def close(self, timeout: float = 10.0) -> None:
        """Send the releases still queued, then close the connection pool."""
        if self._releaser.is_alive():
            self._releases.put(None)
            self._releaser.join(timeout)
        self._pool.close()

    def _run(self, work: Callable[[psycopg.Connection[Any]], bool]) -> bool | None:
        """``work(conn)`` on a pooled connection; None if the store failed (or is left alone)."""
        if time.monotonic() < self._quiet_until:
            return None
        try:
            with self._pool.connection() as conn:
                return work(conn)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._count("store_errors")
            self._quiet_until = time.monotonic() + self.retry_seconds
            logger.warning(
                "contact caps: store unreachable (%s); using the per-process cap for %.0f s",
                type(exc).__name__,
                self.retry_seconds,
            )
            return None

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n


def _send_releases(conn: psycopg.Connection[Any], items: list[tuple[str, float]]) -> bool:
    """Give back the slots of ``items`` in one pipeline (one round trip)."""
    with conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext():
        for user_hash, now in items:
            conn.execute(_RELEASE, {"u": user_hash, "t": now})
    return True
