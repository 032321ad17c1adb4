"""Settled events of a PostgreSQL store, in settlement order, as the trainer's learner sees them.

A settled event is a decision with an outcome row (joined, or the default reward of a closed
window). :class:`SettledEvents` reads them after a position (``outcomes.seq``, commit order, see
:mod:`engine.decision_log.pg_schema`) and maps each row's stored action and feature
vocabularies onto a learner's: rows of fallback decisions, of other actions, or missing one of
the learner's features are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import psycopg

from engine.decision_log.schema import decode_f32, decode_names

__all__ = ["Event", "SettledEvents"]

_READ = (
    "SELECT o.seq, d.fallback, d.action_set, d.action_index, d.probability, d.feature_set,"
    " d.features, o.reward, d.timestamp FROM outcomes AS o"
    " JOIN decisions AS d ON d.decision_id = o.decision_id"
    " WHERE o.seq > %s ORDER BY o.seq LIMIT %s"
)


class Event(NamedTuple):
    """One settled decision, in the learner's action and feature order."""

    x: np.ndarray
    action: int
    probability: float
    reward: float


class SettledEvents:
    """Reads settled events for a learner with ``action_names`` and ``feature_names``."""

    def __init__(self, action_names: Sequence[str], feature_names: Sequence[str]) -> None:
        self.action_names = tuple(action_names)
        self.feature_names = tuple(feature_names)
        self._vocab: dict[str, tuple[str, ...]] = {}
        self._columns: dict[str, np.ndarray | None] = {}

    def read(self, conn: psycopg.Connection[Any], after: int, limit: int) -> list[tuple]:
        """Up to ``limit`` rows settled after position ``after``, in order."""
        return conn.execute(_READ, (after, limit)).fetchall()

    @staticmethod
    def span(rows: Sequence[tuple]) -> tuple[int, int, float]:
        """(first position, last position, last decision's timestamp) of non-empty ``rows``."""
        return int(rows[0][0]), int(rows[-1][0]), float(rows[-1][8])

    def decode(
        self, conn: psycopg.Connection[Any], rows: Sequence[tuple]
    ) -> Iterator[Event | None]:
        """Each row as an :class:`Event`, or None for a row the learner cannot learn from."""
        for _seq, fallback, action_set, index, prob, feature_set, blob, reward, _ts in rows:
            if fallback or self._names(conn, action_set) != self.action_names:
                yield None
                continue
            cols = self._feature_columns(conn, feature_set)
            if cols is None:
                yield None
                continue
            x = np.nan_to_num(decode_f32(bytes(blob)).astype(np.float64)[cols])
            yield Event(x, int(index), float(prob), float(reward))

    def _feature_columns(self, conn: psycopg.Connection[Any], vid: str) -> np.ndarray | None:
        if vid not in self._columns:
            where = {n: i for i, n in enumerate(self._names(conn, vid))}
            self._columns[vid] = (
                np.array([where[n] for n in self.feature_names])
                if all(n in where for n in self.feature_names)
                else None
            )
        return self._columns[vid]

    def _names(self, conn: psycopg.Connection[Any], vid: str) -> tuple[str, ...]:
        names = self._vocab.get(vid)
        if names is None:
            found = conn.execute(
                "SELECT names FROM vocabularies WHERE vocab_id = %s", (vid,)
            ).fetchone()
            names = self._vocab[vid] = decode_names(found[0]) if found else ()
        return names
