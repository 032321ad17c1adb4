"""The interface every decision-log store implements (SQLite, PostgreSQL).

:class:`~engine.decision_log.log.DecisionLog` talks to its store only through these
methods, so no SQL dialect leaks above the store modules.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

from .engine_batch import PreparedDecision
from .records import DecisionRecord, OutcomeRecord

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    """True when ``target`` names a PostgreSQL server rather than a SQLite file.

    >>> is_postgres_url("postgresql://postgres@127.0.0.1:5432/test"), is_postgres_url("log.db")
    (True, False)
    """
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


class Store(Protocol):
    """Reads and writes one decision log.

    ``shared`` is true when other processes write to the same store: outcomes whose
    decision is not stored yet are then kept and joined by the store when it arrives.
    ``errors`` are the exception types that mean "the storage failed" (the log counts
    and survives them; anything else is a bug).
    """

    location: str
    shared: bool
    errors: tuple[type[BaseException], ...]

    def open(self) -> None:
        """Create or migrate the schema (raises one of ``errors`` when unreachable)."""

    def close(self) -> None:
        """Release connections."""

    def write(
        self,
        decisions: Sequence[DecisionRecord | PreparedDecision],
        outcomes: Sequence[OutcomeRecord],
        window: float,
    ) -> tuple[int, int]:
        """Write a batch in one transaction; return (decisions inserted, outcomes inserted).

        Inserts are idempotent: rows already stored are skipped, so a batch may be
        written again after a failure without creating duplicates.
        """

    def decision_state(self, decision_id: str) -> tuple[bool, bool]:
        """(decision stored?, outcome stored?) for one id."""

    def latest_for_user(self, user_hash: str, at: float) -> tuple[str, float] | None:
        """(id, timestamp) of the user's latest stored decision whose window contains ``at``."""

    def expired_open(self, now: float, limit: int | None = None) -> list[tuple[str, str, float]]:
        """(decision_id, action, window_closes) of decisions closed by ``now`` with no outcome."""

    def fetch_decision(self, decision_id: str) -> DecisionRecord | None:
        """Rebuild a stored decision (features come back rounded to float32)."""

    def sweep(self) -> int:
        """Settle outcomes still waiting for their decision (join or expire them); return joins."""

    def checkpoint(self) -> tuple[int, int]:
        """Move committed work to its final place, off the commit path.

        SQLite: a passive WAL checkpoint; a no-op where the server does it.

        Returns:
            (pending units, units moved).
        """


def open_store(target: str | os.PathLike[str], *, durability: str, **options: Any) -> Store:
    """The store for ``target``: a ``postgresql://`` URL or a SQLite file path.

    ``options`` are the store's own keyword arguments (checked by its constructor).
    """
    if is_postgres_url(target):
        from .postgres import PostgresStore

        return PostgresStore(str(target), **options)
    from .store import SQLiteStore, check_path

    return SQLiteStore(
        check_path(target), synchronous="FULL" if durability == "fsync" else "NORMAL", **options
    )
