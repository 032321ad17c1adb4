"""Report outcomes to a decision log from any process (e.g. the order service).

:func:`record_outcome` (by decision id) and :func:`record_order` (by user, attributed to
the user's latest decision in its window) write to the store named by a URL or path and
return what the join did. With PostgreSQL the join runs in the database, so the deciding
process need not be alive; an event whose decision is not stored yet stays ``pending``
and is joined when the decision arrives. With SQLite (one host) the event is joined
through a :class:`~engine.decision_log.log.DecisionLog` on the file.

Statuses: ``joined`` (the first outcome of its decision: kept and learned from),
``duplicate`` (the decision already had one: counted), ``late`` (after the attribution
window: kept and counted, never learned from), ``pending`` (decision not stored yet),
``unknown`` (no such decision), ``unattributed`` (no decision of that user in a window).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .hashing import hash_user_id, resolve_salt
from .records import OutcomeRecord, OutcomeStatus
from .store_api import is_postgres_url

_LOCK = threading.Lock()
_OPEN: dict[str, Any] = {}  # target -> PostgresStore or DecisionLog, reused by later calls

_SQLITE_STATUS = {
    OutcomeStatus.ACCEPTED: "joined",
    OutcomeStatus.DUPLICATE: "duplicate",
    OutcomeStatus.UNKNOWN: "unknown",
    OutcomeStatus.UNATTRIBUTED: "unattributed",
    OutcomeStatus.DEFERRED: "pending",
}


def record_outcome(
    store: str | os.PathLike[str],
    decision_id: str,
    *,
    value: float,
    timestamp: float,
    order_id: str | None = None,
) -> str:
    """Report the outcome (e.g. profit) of decision ``decision_id``; return the join status.

    Raises ValueError for invalid fields and the store's error (e.g. ``psycopg.OperationalError``)
    when it cannot be reached, so the caller can retry.
    """
    outcome = OutcomeRecord(
        decision_id, timestamp, value, "reward", order_id
    )  # validates the fields
    target = _opened(store)
    if is_postgres_url(store):
        from .postgres import event_of, new_event_id

        return target.report([event_of(outcome, new_event_id())])[0]
    receipt = target.append_outcome(
        outcome.decision_id, outcome.reward, outcome.timestamp, "reward", order_id
    )
    return _SQLITE_STATUS[receipt.status]


def record_order(
    store: str | os.PathLike[str],
    *,
    user_id: str,
    value: float,
    timestamp: float,
    order_id: str | None = None,
    salt: str | bytes | None = None,
) -> str:
    """Report an order of ``user_id``; return the join status.

    The order is attributed to the user's latest decision whose window contains ``timestamp``.

    ``salt`` must be the engine's (default, as for the engine: ``$CARTWISE_SALT``, else the
    development salt). PostgreSQL also attributes an order dated up to the store's
    backward window (default 2 min) before the decision.
    """
    template = OutcomeRecord("?", timestamp, value, "event", order_id)  # validates the fields
    user_hash = hash_user_id(user_id, resolve_salt(salt))
    target = _opened(store)
    if is_postgres_url(store):
        from .postgres import OutcomeEvent, new_event_id

        event = OutcomeEvent(
            new_event_id(), None, user_hash, template.timestamp, template.reward, "event", order_id
        )
        return target.report([event])[0]
    receipt = target.outcome_for_user(
        user_hash, template.reward, template.timestamp, order_id, hashed=True
    )
    return _SQLITE_STATUS[receipt.status]


def _opened(store: str | os.PathLike[str]) -> Any:
    key = os.fspath(store)
    with _LOCK:
        target = _OPEN.get(key)
        if target is None:
            if is_postgres_url(key):
                from .postgres import PostgresStore

                target = PostgresStore(key)
            else:
                from .log import DecisionLog

                target = DecisionLog(key, durability="sync")
            _OPEN[key] = target
        return target
