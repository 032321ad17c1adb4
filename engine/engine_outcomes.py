"""The outcome side of :class:`~engine.engine.DecisionEngine`: rewards, orders, expiry, learning.

:class:`OutcomesMixin` holds the methods that turn a decision's outcome into a learner update:
``reward`` (by decision id), ``outcome`` (an order keyed by user), ``close_expired`` (default
rewards once attribution windows close), and the counters they bump.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from engine.context import describe
from engine.decision_log import DecisionLog, hash_user_id
from engine.engine_models import Served
from engine.pending_rewards import PendingDecision, PendingRewards
from engine.update_rule import teach
from engine.validation import check_number, fail

__all__ = ["OutcomesMixin", "is_utf8"]

logger = logging.getLogger("engine.engine")  # one logger for the whole engine

MAX_DECISION_ID = 256


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeError:
        return False
    return True


def _reward_error(decision_id: Any, value: Any, timestamp: Any) -> tuple[ValueError, str] | None:
    """None if ``reward``'s arguments are valid, else the error to raise and a value-free reason."""
    if (
        type(decision_id) is not str
        or not 0 < len(decision_id) <= MAX_DECISION_ID
        or not (decision_id.isascii() or is_utf8(decision_id))
    ):
        return (
            fail(
                decision_id,
                "decision_id",
                f"a string of 1..{MAX_DECISION_ID} characters of valid Unicode",
            ),
            f"decision_id: {describe(decision_id)} found, "
            f"must be a string of 1..{MAX_DECISION_ID} characters",
        )
    for name, number in (("value", value), ("timestamp", timestamp)):
        if number is None and name == "timestamp":
            continue
        try:
            check_number(number, name)
        except ValueError as exc:
            return exc, f"{name}: {describe(number)} found, must be a finite number"
    return None


class OutcomesMixin:
    """Outcome handling for :class:`~engine.engine.DecisionEngine`, which sets the attributes."""

    strict: bool
    log: DecisionLog | None
    attribution_window: float
    contact_cost: float
    default_reward: float | Callable[[str], float]
    online_learning: bool
    propensity_floor: float | None
    action_names: tuple[str, ...]
    _salt: str
    _model: Served
    _state_lock: threading.Lock
    _pending: PendingRewards
    _counts: dict[str, int]

    def reward(self, decision_id: str, value: float, timestamp: float | None = None) -> bool:
        """Report the realised profit of a decision; True when it was new and inside its window.

        Never raises (unless ``strict`` and an argument is invalid: ``ValueError``). Invalid
        arguments (an id that is not a string of at most 256 characters, a value or timestamp that
        is not a finite number...) are counted as ``invalid_rewards`` and change nothing, so a
        corrected retry is accepted. Duplicates (first wins), unknown ids and late rewards are
        counted. If recording the outcome fails, the decision stays pending (``errors`` counts it).
        """
        try:
            error = _reward_error(decision_id, value, timestamp)
        except Exception as exc:  # a hostile argument broke the check itself
            error = (
                ValueError(f"reward arguments could not be read: {type(exc).__name__}"),
                f"unreadable arguments ({type(exc).__name__})",
            )
        if error is not None:
            if self.strict:
                raise error[0]
            logger.warning("reward ignored: %s", error[1])
            self._bump("invalid_rewards")
            return False
        try:
            return self._reward(
                decision_id, float(value), None if timestamp is None else float(timestamp)
            )
        except Exception:  # the caller must never see an engine failure
            logger.exception("reward failed; the decision stays pending")
            self._bump("errors")
            return False

    def _reward(self, decision_id: str, value: float, timestamp: float | None) -> bool:
        with self._state_lock:
            self._counts["rewards"] += 1
            entry = self._pending.settle(decision_id)
            if entry is None:
                self._counts[
                    "duplicate_rewards"
                    if self._pending.was_settled(decision_id)
                    else "unknown_rewards"
                ] += 1
        if (
            entry is not None
            and timestamp is not None
            and timestamp - entry.timestamp > self.attribution_window
        ):
            self._bump("late_rewards")
            entry = None
        if self.log is not None:
            ts = time.time() if timestamp is None else timestamp
            try:
                receipt = self.log.append_outcome(
                    decision_id, value, ts if entry is None else max(ts, entry.timestamp)
                )
            except Exception:
                if entry is not None:  # not recorded: a retry must find it pending
                    with self._state_lock:
                        self._pending.restore(decision_id, entry)
                raise
            if entry is not None and not receipt.accepted:
                entry = None
        if entry is None:
            return False
        self._learn(entry, value)
        return True

    def outcome(
        self, user_id: str, value: float, timestamp: float, order_id: str | None = None
    ) -> str | None:
        """An order event keyed by user: attributed to the user's latest decision in its window.

        Returns the decision id it was joined to, or None. Requires a decision log.
        """
        if self.log is None:
            raise ValueError("outcome() needs a decision log: create the engine with log_path=...")
        receipt = self.log.outcome_for_user(
            hash_user_id(user_id, self._salt), float(value), float(timestamp), order_id, hashed=True
        )
        if not receipt.accepted:
            return None
        decision_id = receipt.decision_id
        if decision_id is None:
            raise RuntimeError("the decision log accepted an outcome without naming its decision")
        with self._state_lock:
            entry = self._pending.settle(decision_id)
            self._pending.mark_settled(decision_id)
        if entry is not None:
            self._learn(entry, float(value))
        return decision_id

    def close_expired(self, now: float) -> int:
        """Give the default reward to decisions whose attribution window closed by ``now``."""
        with self._state_lock:
            expired = self._pending.expire(now, self.attribution_window)
        if self.log is not None:
            self.log.close_expired(now)
        for _, entry in expired:
            self._learn(entry, self._default_for(self.action_names[entry.action]))
        self._bump("defaulted", len(expired))
        return len(expired)

    def _learn(self, entry: PendingDecision, value: float) -> None:
        self._bump("rewards_learned")
        learner = entry.learner
        served = self._model  # the learner and its feature builder, from one snapshot
        if self.online_learning and learner is served.learner:
            teach(
                learner,
                entry.features,
                entry.action,
                entry.probability,
                value,
                propensity_floor=self.propensity_floor,
                reward_divisor=served.features.reward_divisor,
            )

    def _contact_default(self, action: str) -> float:
        return 0.0 if action == "none" else -self.contact_cost

    def _default_for(self, action: str) -> float:
        d = self.default_reward
        return float(d(action)) if callable(d) else float(d)

    def _bump(self, key: str, n: int = 1) -> None:
        with self._state_lock:
            self._counts[key] += n
