"""Thread-safe event counters of a decision log, reported by ``DecisionLog.health``."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)

COUNTER_NAMES = (
    "written_decisions",
    "written_outcomes",
    "duplicates",
    "duplicate_decisions",
    "unknown_ids",
    "unattributed",
    "defaulted",
    "read_errors",
    "deferred",
    "invalid_decisions",
)


class LogCounters:
    """Counts of what happened to the events a log was given, since it was created.

    >>> counters = LogCounters()
    >>> counters.bump("duplicates", 2)
    >>> counters.snapshot()["duplicates"]
    2
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTER_NAMES, 0)

    def bump(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``key`` (one of :data:`COUNTER_NAMES`)."""
        with self._lock:
            self._counts[key] += n

    def snapshot(self) -> dict[str, int]:
        """A consistent copy of every counter."""
        with self._lock:
            return dict(self._counts)

    def read_failed(self, exc: BaseException) -> None:
        """Count and log a failed read of the store (the log carries on without it)."""
        self.bump("read_errors")
        logger.error("decision log read failed: %s", exc)
