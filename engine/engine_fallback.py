"""The safe fallback of :class:`~engine.engine.DecisionEngine` for input it cannot decide on.

:class:`FallbackMixin` builds the fallback decision, counts it by field, and logs it with a
value-free reason (the record may be stored, so it never holds the offending value).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from engine.context import ContextLimits
from engine.decision import Decision
from engine.decision_log import DecisionLog, DecisionRecord
from engine.engine_outcomes import is_utf8

__all__ = ["FallbackMixin"]

logger = logging.getLogger("engine.engine")  # one logger for the whole engine

_MAX_FLOAT = sys.float_info.max


class FallbackMixin:
    """Fallback decisions for :class:`~engine.engine.DecisionEngine`, which sets the attributes."""

    fallback_action: str
    action_names: tuple[str, ...]
    limits: ContextLimits
    log: DecisionLog | None
    model_version: str
    _fallback_probs: dict[str, float]
    _fallback_reasons: dict[str, int]
    _counts: dict[str, int]
    _state_lock: threading.Lock
    _hash_user: Callable[[str], str]

    def _fallback(
        self, context: Any, message: str, key: str, reason: str, decision_id: str | None = None
    ) -> Decision:
        """The fallback decision, counted under ``key`` (a field path without indices).

        It is logged with ``reason`` (value-free: it may be stored); ``message`` goes to the
        caller.
        """
        logger.warning("decide fell back to %r: %s", self.fallback_action, reason)
        decision_id = decision_id or os.urandom(16).hex()
        with self._state_lock:
            self._counts["fallbacks"] += 1
            self._fallback_reasons[key] = self._fallback_reasons.get(key, 0) + 1
        if self.log is not None:
            try:
                raw_ts: Any = context.get("timestamp") if type(context) is dict else None
                ts = (
                    float(raw_ts)
                    if type(raw_ts) in (int, float) and 0 <= raw_ts <= _MAX_FLOAT
                    else time.time()
                )
                uid = context.get("user_id") if type(context) is dict else None
                user_hash = (
                    self._hash_user(uid)
                    if type(uid) is str
                    and 0 < len(uid) <= self.limits.max_string
                    and (uid.isascii() or is_utf8(uid))
                    else "invalid"
                )
                probs = tuple(1.0 if a == self.fallback_action else 0.0 for a in self.action_names)
                self.log.append_decision(
                    DecisionRecord(
                        decision_id=decision_id,
                        timestamp=ts,
                        user_hash=user_hash,
                        model_version=self.model_version,
                        actions=self.action_names,
                        probabilities=probs,
                        eligible=(self.fallback_action,),
                        action=self.fallback_action,
                        fallback=True,
                        payload={"reason": reason[:200]},
                    )
                )
            except Exception:  # the fallback path itself must never raise
                logger.exception("could not log a fallback decision")
        return Decision(
            decision_id,
            self.fallback_action,
            1.0,
            dict(self._fallback_probs),
            {},
            self.model_version,
            True,
            message,
        )
