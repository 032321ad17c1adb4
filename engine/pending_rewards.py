"""Decisions awaiting their outcome, kept so that the outcome can teach the learner.

:class:`PendingRewards` maps decision ids to :class:`PendingDecision` entries (what the learner
needs: the feature vector, the action, its probability, and the learner that decided), oldest
first, bounded in size; it also remembers the ids of recently settled decisions, so that a second
outcome for one decision can be told from an unknown id. It is not thread-safe: the engine calls
it under its state lock. (The decision log's own buffer of not-yet-committed events is
:class:`engine.decision_log.pending.PendingIndex`.)

>>> import numpy as np
>>> pending = PendingRewards(max_pending=2)
>>> for i in range(3):
...     _ = pending.add(f"d{i}", PendingDecision(np.zeros(2), 1, 0.5, 100.0 * i, None))
>>> list(pending.ids()), pending.settle("d1").action
(['d1', 'd2'], 1)
>>> pending.settle("d1"), pending.was_settled("d1")
(None, True)
>>> [decision_id for decision_id, _ in pending.expire(now=300.0, window=100.0)]
['d2']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple

import numpy as np

__all__ = ["PendingDecision", "PendingRewards", "new_pending_decision"]


class PendingDecision(NamedTuple):
    """A decision awaiting its outcome.

    Attributes:
        features: the feature vector it was decided on.
        action: index of the action taken.
        probability: the probability with which it was taken.
        timestamp: the context's time (its attribution window starts there).
        learner: the learner that decided (an outcome teaches only the learner that decided).
    """

    features: np.ndarray
    action: int
    probability: float
    timestamp: float
    learner: Any


#: ``new_pending_decision((features, action, probability, timestamp, learner))``: a
#: :class:`PendingDecision` without the generated ``__new__``'s Python-level call (one per decide).
new_pending_decision: Callable[[tuple[Any, ...]], PendingDecision] = partial(
    tuple.__new__, PendingDecision
)


class PendingRewards:
    """Decisions awaiting an outcome, oldest first, at most ``max_pending`` (the oldest dropped).

    Args:
        max_pending: most decisions kept.
        remembered_settled: how many settled ids are remembered to recognise duplicates.
    """

    def __init__(self, max_pending: int, remembered_settled: int = 100_000) -> None:
        self.max_pending = max_pending
        self.remembered_settled = remembered_settled
        self._pending: OrderedDict[str, PendingDecision] = OrderedDict()
        self._settled: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def ids(self) -> Iterator[str]:
        """Ids of the pending decisions, oldest first."""
        return iter(self._pending)

    def add(self, decision_id: str, entry: PendingDecision) -> bool:
        """Keep ``entry``; True when the oldest entry was dropped to make room."""
        pending = self._pending
        pending[decision_id] = entry
        if len(pending) > self.max_pending:
            pending.popitem(last=False)
            return True
        return False

    def settle(self, decision_id: str) -> PendingDecision | None:
        """Remove and return the entry of ``decision_id`` (None if it is not pending).

        A found id is remembered as settled.
        """
        entry = self._pending.pop(decision_id, None)
        if entry is not None:
            self._remember(decision_id)
        return entry

    def restore(self, decision_id: str, entry: PendingDecision) -> None:
        """Put back an entry whose outcome could not be recorded.

        It is pending again (newest last) and no longer remembered as settled.
        """
        self._settled.pop(decision_id, None)
        self._pending[decision_id] = entry

    def mark_settled(self, decision_id: str) -> None:
        """Remember ``decision_id`` as settled (an outcome the decision log attributed to it)."""
        self._remember(decision_id)

    def was_settled(self, decision_id: str) -> bool:
        """Whether ``decision_id`` is among the recently settled ids."""
        return decision_id in self._settled

    def expire(self, now: float, window: float) -> list[tuple[str, PendingDecision]]:
        """Remove and return, oldest first, the entries whose ``window`` closed by ``now``.

        Only the leading run of such entries is removed; their ids are remembered as settled.
        """
        out: list[tuple[str, PendingDecision]] = []
        pending = self._pending
        while pending:
            decision_id, entry = next(iter(pending.items()))
            if entry.timestamp + window > now:
                break
            pending.popitem(last=False)
            self._remember(decision_id)
            out.append((decision_id, entry))
        return out

    def _remember(self, decision_id: str) -> None:
        settled = self._settled
        settled[decision_id] = None
        if len(settled) > self.remembered_settled:
            settled.popitem(last=False)
