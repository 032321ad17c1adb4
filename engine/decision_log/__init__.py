"""Durable decision log: decisions, outcomes, attribution windows, exports.

Write side: :class:`DecisionLog` with :class:`DecisionRecord` (SQLite file or PostgreSQL
URL); from any process, :func:`record_outcome` and :func:`record_order`. Readers (which import
pandas, so they load on first use): :func:`read_log`, :func:`to_parquet`,
:func:`to_dsjson`, :func:`dsjson_event`.
"""

from importlib import import_module
from typing import Any

from .hashing import hash_user_id, user_hasher
from .log import DecisionLog
from .records import OUTCOME_SOURCES, DecisionRecord, OutcomeReceipt, OutcomeRecord, OutcomeStatus

_READERS = {
    "read_log": "export",
    "to_parquet": "export",
    "to_dsjson": "dsjson",
    "dsjson_event": "dsjson",
    "record_outcome": "remote",
    "record_order": "remote",
}

__all__ = [
    "DecisionLog",
    "DecisionRecord",
    "OutcomeRecord",
    "OutcomeReceipt",
    "OutcomeStatus",
    "OUTCOME_SOURCES",
    "hash_user_id",
    "user_hasher",
    *_READERS,
]


def __getattr__(name: str) -> Any:
    if name in _READERS:
        return getattr(import_module(f".{_READERS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
