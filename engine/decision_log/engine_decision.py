"""What the engine's ``decide`` hands the decision log: the decision as plain values.

Building and checking a :class:`~engine.decision_log.records.DecisionRecord` (packing the
features, checking the probabilities, encoding the payload) is left to the log's writer thread,
so the calling thread only puts one tuple in the writer's queue and the log's index of buffered
decisions (which answers outcomes that arrive before the commit).

>>> import numpy as np
>>> d = new_engine_decision(("d1", 100.0, "ab12", "m1", ("none", "coupon_5"), [0.25, 0.75],
...                          [True, True], 1, ("bias",), np.ones(1), {}))
>>> d.action, d.to_record().probability, dict(d.to_record().features)
('coupon_5', 0.75, {'bias': 1.0})
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from .records import DecisionRecord, PackedFeatures

__all__ = ["EngineDecision", "new_engine_decision"]


class EngineDecision(NamedTuple):
    """One decision of :class:`~engine.engine.DecisionEngine`, not yet a record.

    The engine's own invariants hold for it: the timestamp was validated with the context, the
    user id hashed by the engine, ``probabilities`` come from the learner's checked output with
    the exploration floor (0 off ``eligible``, > 0 at the sampled ``action_index``), and
    ``payload`` is built by the engine. :meth:`to_record` still runs the checks of
    :meth:`DecisionRecord.from_engine` (the writer counts and logs a record that fails them).

    Attributes:
        decision_id, timestamp, user_hash, model_version: as in the record.
        actions: the action catalogue.
        probabilities: one per action (a list the engine does not change afterwards).
        eligible: one bool per action.
        action_index: the sampled action.
        feature_names: the feature builder's names.
        features: the feature vector (float64; the engine does not change it afterwards).
        payload: the action's payload.
    """

    decision_id: str
    timestamp: float
    user_hash: str
    model_version: str
    actions: tuple[str, ...]
    probabilities: list[float]
    eligible: list[bool]
    action_index: int
    feature_names: tuple[str, ...]
    features: np.ndarray
    payload: dict[str, Any]

    @property
    def action(self) -> str:
        """The sampled action's name."""
        return self.actions[self.action_index]

    def to_record(self) -> DecisionRecord:
        """The validated :class:`DecisionRecord` (ValueError naming what is wrong)."""
        return DecisionRecord.from_engine(
            decision_id=self.decision_id,
            timestamp=self.timestamp,
            user_hash=self.user_hash,
            model_version=self.model_version,
            actions=self.actions,
            probabilities=tuple(self.probabilities),
            eligible=tuple(itertools.compress(self.actions, self.eligible)),
            action_index=self.action_index,
            features=PackedFeatures.from_array(self.feature_names, self.features),
            payload=self.payload,
        )


#: ``new_engine_decision((decision_id, timestamp, ..., payload))``: an :class:`EngineDecision`
#: without the generated ``__new__``'s Python-level call (one per decide).
new_engine_decision: Callable[[tuple[Any, ...]], EngineDecision] = partial(
    tuple.__new__, EngineDecision
)
