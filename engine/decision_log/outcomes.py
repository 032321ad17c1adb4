"""Outcome intake of the decision log: first outcome wins, user attribution, default rewards.

:class:`OutcomeDesk` decides what becomes of each outcome a
:class:`~engine.decision_log.log.DecisionLog` is given, looking at buffered events
(:class:`~engine.decision_log.pending.PendingIndex`) and stored ones (the
:class:`~engine.decision_log.store_api.Store`) alike. The log validates its arguments and
delegates here.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from .counters import LogCounters
from .pending import PendingIndex
from .records import OutcomeReceipt, OutcomeRecord, OutcomeStatus
from .store_api import Store
from .writer import BatchWriter

logger = logging.getLogger(__name__)


class OutcomeDesk:
    """Accepts, attributes and defaults the outcomes of one decision log; thread-safe.

    Args:
        store: The log's store (read to check decisions that are no longer buffered).
        pending: Index of the events buffered but not committed yet.
        writer: Where accepted outcomes are submitted.
        counters: Where duplicates, unknown ids and the like are counted.
        default_for: Reward of a decision, by action name, whose window closed unrewarded.
        flush_events: Defaults are flushed in batches of this many events.
        sync: Whether each accepted outcome is committed before the call returns.
    """

    def __init__(
        self,
        store: Store,
        pending: PendingIndex,
        writer: BatchWriter,
        counters: LogCounters,
        *,
        default_for: Callable[[str], float],
        flush_events: int,
        sync: bool,
    ) -> None:
        self._store = store
        self._pending = pending
        self._writer = writer
        self._counters = counters
        self._default_for = default_for
        self._flush_events = flush_events
        self._sync = sync
        self._lock = threading.Lock()  # check-then-buffer of outcomes is atomic

    def record(self, outcome: OutcomeRecord) -> OutcomeReceipt:
        """Buffer ``outcome`` if it is the first for a known decision; say what became of it."""
        with self._lock:
            receipt, seq = self._accept(outcome)
        return self._settle(receipt, seq)

    def record_for_user(self, user_hash: str, template: OutcomeRecord) -> OutcomeReceipt:
        """Give ``template`` to the user's latest decision whose window contains its timestamp.

        ``template`` is a validated outcome whose ``decision_id`` is replaced by the attributed
        decision's.
        """
        with self._lock:
            decision_id = self._attribute(user_hash, template.timestamp)
            if decision_id is None:
                self._counters.bump("unattributed")
                logger.debug(
                    "outcome at %s for user %s matches no open decision",
                    template.timestamp,
                    user_hash,
                )
                return OutcomeReceipt(None, OutcomeStatus.UNATTRIBUTED)
            receipt, seq = self._accept(dataclasses.replace(template, decision_id=decision_id))
        return self._settle(receipt, seq)

    def close_expired(self, now: float, limit: int | None) -> list[tuple[str, float]]:
        """Give the default reward to decisions whose window closed by ``now`` unrewarded.

        Returns:
            ``[(decision_id, default_reward), ...]``, oldest window first, at most ``limit``.
        """
        store, writer = self._store, self._writer
        with self._lock:
            writer.flush()
            try:
                store.sweep()  # a shared store settles outcomes that waited for their decision
            except store.errors as exc:
                self._counters.read_failed(exc)
            candidates, taken = self._pending.expired(now)  # normally empty after the flush
            try:
                for decision_id, action, closes in store.expired_open(now, limit):
                    candidates.setdefault(decision_id, (action, closes))
            except store.errors as exc:
                self._counters.read_failed(exc)
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
                writer.submit(outcome)
                if n % self._flush_events == 0:
                    writer.flush()
            self._counters.bump("defaulted", len(defaults))
            writer.flush()
        return [(outcome.decision_id, outcome.reward) for outcome in defaults]

    def _settle(self, receipt: OutcomeReceipt, seq: int) -> OutcomeReceipt:
        """In sync mode, commit an accepted outcome (outside the lock: group commit)."""
        if self._sync and seq:
            self._writer.commit_through(seq)
        return receipt

    def _accept(self, outcome: OutcomeRecord) -> tuple[OutcomeReceipt, int]:
        """Buffer ``outcome`` if it is the first for a known decision (lock held).

        Returns:
            The receipt and the buffer sequence number (0 when nothing was buffered).
        """
        did = outcome.decision_id
        known, has_outcome = self._pending.state(did)
        if not has_outcome and not known:
            try:
                known, has_outcome = self._store.decision_state(did)
            except self._store.errors as exc:  # cannot check: keep it, the store ignores repeats
                self._counters.read_failed(exc)
                known = True
            if not known and self._store.shared:  # decided elsewhere, not stored yet: joined later
                self._counters.bump("deferred")
                return OutcomeReceipt(did, OutcomeStatus.DEFERRED), self._writer.submit(outcome)
        if has_outcome:
            self._counters.bump("duplicates")
            logger.debug("duplicate outcome for decision %s ignored (first one wins)", did)
            return OutcomeReceipt(did, OutcomeStatus.DUPLICATE), 0
        if not known:
            self._counters.bump("unknown_ids")
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
            self._counters.read_failed(exc)
            stored = None
        if stored is not None and (buffered is None or stored[1] > buffered[0]):
            return stored[0]
        return None if buffered is None else buffered[1]
