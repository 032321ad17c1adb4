"""In-memory index of events accepted by the log but not yet committed.

Lookups (is this decision known? does it have an outcome? which decision of this user is
open?) must see buffered events as well as stored ones. Events leave the index once
committed (or dropped), so its size is bounded by the log's memory buffers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .engine_batch import PreparedDecision
from .engine_decision import EngineDecision
from .records import DecisionRecord, OutcomeRecord

FORGET_CHUNK = 64  # events removed per lock hold

#: A buffered decision: a record, or the engine's plain values the writer turns into one.
Buffered = DecisionRecord | EngineDecision


class PendingIndex:
    """Buffered decisions (by id and by user) and outcomes (by decision id); thread-safe.

    The engine's decisions are indexed as :class:`EngineDecision` when ``decide`` hands them
    over and stay so until committed (the writer's :class:`PreparedDecision` carries the entry;
    one that took the record path is replaced by its record, :meth:`replace`), so an outcome
    finds its decision at any point between ``decide`` and the commit.
    """

    def __init__(self, attribution_window: float) -> None:
        self.attribution_window = attribution_window
        self._lock = threading.Lock()
        self._decisions: dict[str, Buffered] = {}
        self._by_user: dict[str, list[str]] = {}
        self._outcomes: dict[str, OutcomeRecord] = {}

    def add_decision(self, record: Buffered) -> None:
        """Index a decision handed to the writer."""
        with self._lock:
            self._decisions[record.decision_id] = record
            self._by_user.setdefault(record.user_hash, []).append(record.decision_id)

    def replace(self, pairs: Sequence[tuple[EngineDecision, DecisionRecord]]) -> None:
        """Index each record in place of the engine decision it was built from."""
        decisions = self._decisions
        for start in range(0, len(pairs), FORGET_CHUNK):
            with self._lock:
                for entry, record in pairs[start : start + FORGET_CHUNK]:
                    if decisions.get(entry.decision_id) is entry:
                        decisions[entry.decision_id] = record

    def add_outcome(self, outcome: OutcomeRecord) -> None:
        """Index an outcome handed to the writer (the decision's only one)."""
        with self._lock:
            self._outcomes[outcome.decision_id] = outcome

    def decision(self, decision_id: str) -> DecisionRecord | None:
        """The buffered decision with this id, or None."""
        with self._lock:
            found = self._decisions.get(decision_id)
        if isinstance(found, EngineDecision):
            try:
                return found.to_record()
            except ValueError:  # the writer will count and log it
                return None
        return found

    def state(self, decision_id: str) -> tuple[bool, bool]:
        """(decision buffered?, outcome buffered?)."""
        with self._lock:
            return decision_id in self._decisions, decision_id in self._outcomes

    def latest_for_user(self, user_hash: str, at: float) -> tuple[float, str] | None:
        """(timestamp, id) of the user's latest buffered decision whose window contains ``at``.

        The last appended wins ties.
        """
        best: tuple[float, str] | None = None
        with self._lock:
            for decision_id in self._by_user.get(user_hash, ()):
                rec = self._decisions.get(decision_id)
                if (
                    rec is not None
                    and rec.timestamp <= at < rec.timestamp + self.attribution_window
                    and (best is None or rec.timestamp >= best[0])
                ):
                    best = (rec.timestamp, decision_id)
        return best

    def expired(self, now: float) -> tuple[dict[str, tuple[str, float]], set[str]]:
        """Buffered decisions whose window closed by ``now``, and those with an outcome.

        Returns:
            ``{decision id: (action, window close)}`` of the closed decisions, and the ids of
            decisions with a buffered outcome.
        """
        with self._lock:
            closed = {
                rec.decision_id: (rec.action, rec.timestamp + self.attribution_window)
                for rec in self._decisions.values()
                if rec.timestamp + self.attribution_window <= now
            }
            return closed, set(self._outcomes)

    def forget(self, events: Sequence[Buffered | PreparedDecision | OutcomeRecord]) -> None:
        """Remove committed (or dropped) events, a few at a time.

        Callers adding events (the decide path) never wait for more than one short chunk.
        """
        for start in range(0, len(events), FORGET_CHUNK):
            with self._lock:
                for event in events[start : start + FORGET_CHUNK]:
                    if isinstance(event, PreparedDecision):
                        event = event.entry
                    decision_id = event.decision_id
                    if isinstance(event, OutcomeRecord):
                        if self._outcomes.get(decision_id) is event:
                            del self._outcomes[decision_id]
                        continue
                    if self._decisions.get(decision_id) is event:
                        del self._decisions[decision_id]
                    ids = self._by_user.get(event.user_hash)
                    if ids is not None and decision_id in ids:
                        ids.remove(decision_id)
                        if not ids:
                            del self._by_user[event.user_hash]

    def sizes(self) -> tuple[int, int]:
        """(buffered decisions, buffered outcomes)."""
        with self._lock:
            return len(self._decisions), len(self._outcomes)
