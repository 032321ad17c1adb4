"""Validated, immutable records that go into the decision log.

Validation happens once, when a record is built (by the engine, outside the log's lock),
so the writer thread can never be handed a row that fails to encode.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from engine.validation import check_non_negative, check_number, check_probability

from .packed import (
    FLOAT32_MAX,
    PAYLOAD_ENCODER,
    PackedFeatures,
    checked_names,
    checked_text,
    hashable_values,
    json_safe_payload,
    packed_features,
)

__all__ = [
    "FLOAT32_MAX",
    "OUTCOME_SOURCES",
    "PROBABILITY_SUM_TOLERANCE",
    "DecisionRecord",
    "OutcomeReceipt",
    "OutcomeRecord",
    "OutcomeStatus",
    "PackedFeatures",
    "check_timestamp",
    "packed_features",
]

#: Allowed values of an outcome's ``source``.
OUTCOME_SOURCES = ("reward", "event", "default")

#: Tolerance on ``sum(probabilities) == 1``.
PROBABILITY_SUM_TOLERANCE = 1e-6


@lru_cache(maxsize=1024)
def action_catalogue(actions: tuple) -> dict[str, int]:
    """Each action's index in the catalogue ``actions``, checked once per distinct tuple."""
    names = checked_names("actions", actions)
    if not names:
        raise ValueError("actions == [], must name at least one action")
    return {name: i for i, name in enumerate(names)}


@lru_cache(maxsize=4096)
def _ineligible(actions: tuple, eligible: tuple) -> tuple[int, ...]:
    index = action_catalogue(actions)
    names = checked_names("eligible", eligible)
    unknown = [name for name in names if name not in index]
    if unknown:
        raise ValueError(f"eligible contains {unknown!r}, not in actions {list(actions)}")
    allowed = set(names)
    return tuple(i for i, name in enumerate(actions) if name not in allowed)


@lru_cache(maxsize=1024)
def _feature_names(names: tuple) -> tuple[str, ...]:
    return tuple(checked_text("feature name", name) for name in names)


def _as_list(raw: Any) -> Any:
    """Numpy arrays -> lists of Python floats; other sequences unchanged."""
    return raw.tolist() if hasattr(raw, "tolist") and not isinstance(raw, (str, bytes)) else raw


def check_timestamp(name: str, value: Any) -> float:
    """``value`` as unix seconds (a finite float >= 0), or ValueError naming ``name``."""
    if type(value) is float and 0.0 <= value < math.inf:  # the common case, without a call
        return value
    return check_non_negative(value, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRecord:
    """One decision, as the engine made it.

    ``actions`` is the full action catalogue (order fixed by the engine), ``probabilities``
    the policy's distribution over all of it (0 for ineligible actions), ``eligible`` the
    actions the guardrails allowed and ``action`` the one sampled. ``features`` is a mapping
    name -> float, or (what the engine passes) :class:`PackedFeatures`, already in the
    store's float32 format.

    >>> r = DecisionRecord(
    ...     timestamp=1767225600.0, user_hash="ab12", model_version="m1",
    ...     actions=("none", "coupon_5"), probabilities=(0.25, 0.75),
    ...     eligible=("none", "coupon_5"), action="coupon_5", features={"cart_value": 59.9},
    ... )
    >>> r.action_index, r.probability
    (1, 0.75)
    """

    timestamp: float
    user_hash: str
    model_version: str
    actions: tuple[str, ...]
    probabilities: tuple[float, ...]
    eligible: tuple[str, ...]
    action: str
    features: Mapping[str, float] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)
    fallback: bool = False
    decision_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    action_index: int = field(init=False)
    # the payload as JSON text; None until first read for the engine's records, whose payloads
    # are checked to be JSON-safe on the hot path and encoded by the writer thread
    _payload_json: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "decision_id", checked_text("decision_id", self.decision_id, 128))
        put(self, "timestamp", check_timestamp("timestamp", self.timestamp))
        put(self, "user_hash", checked_text("user_hash", self.user_hash, 128))
        put(self, "model_version", checked_text("model_version", self.model_version))
        actions = hashable_values("actions", self.actions)
        index = action_catalogue(actions)
        put(self, "actions", actions)
        eligible = hashable_values("eligible", self.eligible)
        ineligible = _ineligible(actions, eligible)
        put(self, "eligible", eligible)
        if self.action not in eligible:
            if self.action not in index:
                raise ValueError(f"action == {self.action!r}, must be one of {list(actions)}")
            raise ValueError(f"action == {self.action!r}, must be in eligible {list(eligible)}")
        put(self, "action_index", index[self.action])
        put(self, "probabilities", self._checked_probabilities(actions, ineligible))
        if self.probabilities[self.action_index] <= 0.0:
            raise ValueError(f"probability of action {self.action!r} == 0.0, must be > 0")
        put(self, "features", self._checked_features())
        if type(self.payload) is not dict and not isinstance(self.payload, Mapping):
            raise ValueError(f"payload == {self.payload!r}, must be a mapping")
        try:
            encoded = (
                "{}"
                if type(self.payload) is dict and not self.payload
                else PAYLOAD_ENCODER.encode(self.payload)
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"payload == {self.payload!r}, must be JSON-serialisable: {exc}"
            ) from None
        put(self, "_payload_json", encoded)
        if not isinstance(self.fallback, bool):
            raise ValueError(f"fallback == {self.fallback!r}, must be a bool")

    @classmethod
    def from_engine(
        cls,
        *,
        decision_id: str,
        timestamp: float,
        user_hash: str,
        model_version: str,
        actions: tuple[str, ...],
        probabilities: tuple[float, ...],
        eligible: tuple[str, ...],
        action_index: int,
        features: PackedFeatures,
        payload: dict[str, Any],
    ) -> DecisionRecord:
        """A record built on the engine's hot path, with only the checks its inputs can fail.

        The engine validated the context (timestamp), the caller's decision id and its own
        catalogue, hashes the user itself, and samples ``action_index`` among ``eligible``, so
        those are taken as given; the learner's ``probabilities`` (must be a distribution, 0
        off ``eligible``, > 0 at the action), the packed ``features`` (checked when packed)
        and the ``payload`` (must encode as JSON) are checked as by the constructor.

        >>> import numpy as np
        >>> r = DecisionRecord.from_engine(
        ...     decision_id="d1", timestamp=100.0, user_hash="ab12", model_version="m1",
        ...     actions=("none", "coupon_5"), probabilities=(0.25, 0.75),
        ...     eligible=("none", "coupon_5"), action_index=1,
        ...     features=PackedFeatures.from_array(("bias",), np.ones(1)), payload={})
        >>> r.action, r.probability, dict(r.features)
        ('coupon_5', 0.75, {'bias': 1.0})
        """
        if type(features) is not PackedFeatures:
            raise ValueError(f"features == {features!r}, must be PackedFeatures")
        ineligible = _ineligible(actions, eligible)
        probs = tuple(map(float, probabilities))
        total = math.fsum(probs)
        if (
            len(probs) != len(actions)
            or not abs(total - 1.0) <= PROBABILITY_SUM_TOLERANCE  # NaN fails too
            or not 0.0 <= min(probs) <= max(probs) <= 1.0
            or not probs[action_index] > 0.0
            or (ineligible and any(probs[i] != 0.0 for i in ineligible))
        ):  # let the constructor say what is wrong
            return cls(
                decision_id=decision_id,
                timestamp=timestamp,
                user_hash=user_hash,
                model_version=model_version,
                actions=actions,
                probabilities=probs,
                eligible=eligible,
                action=actions[action_index],
                features=features,
                payload=payload,
            )
        encoded: str | None = None  # the writer thread encodes a JSON-safe payload
        if not json_safe_payload(payload):
            try:
                encoded = PAYLOAD_ENCODER.encode(payload)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"payload == {payload!r}, must be JSON-serialisable: {exc}"
                ) from None
        record = cls.__new__(cls)
        put = object.__setattr__
        put(record, "decision_id", decision_id)
        put(record, "timestamp", timestamp)
        put(record, "user_hash", user_hash)
        put(record, "model_version", model_version)
        put(record, "actions", actions)
        put(record, "probabilities", probs)
        put(record, "eligible", eligible)
        put(record, "action", actions[action_index])
        put(record, "features", features)
        put(record, "payload", payload)
        put(record, "fallback", False)
        put(record, "action_index", action_index)
        put(record, "_payload_json", encoded)
        return record

    @property
    def payload_json(self) -> str:
        """The payload as compact JSON text (what the stores write)."""
        encoded = self._payload_json
        if encoded is None:
            encoded = PAYLOAD_ENCODER.encode(self.payload) if self.payload else "{}"
            object.__setattr__(self, "_payload_json", encoded)
        return encoded

    def _checked_probabilities(
        self, actions: tuple[str, ...], ineligible: tuple[int, ...]
    ) -> tuple[float, ...]:
        raw = _as_list(self.probabilities)
        if isinstance(raw, (str, bytes)) or not hasattr(raw, "__len__") or len(raw) != len(actions):
            raise ValueError(
                f"probabilities == {raw!r}, must have one entry per action ({len(actions)})"
            )
        probs = tuple(raw)
        if not all(type(p) is float and 0.0 <= p <= 1.0 for p in probs):
            probs = tuple(  # slow path: convert or explain
                check_probability(p, f"probability of {name!r}")
                for name, p in zip(actions, probs, strict=True)
            )
        for i in ineligible:
            if probs[i] != 0.0:
                raise ValueError(
                    f"probability of ineligible action {actions[i]!r} == {probs[i]!r}, must be 0"
                )
        total = math.fsum(probs)
        if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
            raise ValueError(
                f"sum(probabilities) == {total!r}, must be 1 (+-{PROBABILITY_SUM_TOLERANCE})"
            )
        return probs

    def _checked_features(self) -> Mapping[str, float]:
        features = self.features
        if type(features) is PackedFeatures:  # names checked and values packed when built
            return features
        if type(features) is not dict and not isinstance(features, Mapping):
            raise ValueError(f"features == {features!r}, must be a mapping name -> float")
        names = _feature_names(hashable_values("feature names", tuple(features)))
        values = tuple(features.values())
        if all(type(v) is float and -FLOAT32_MAX <= v <= FLOAT32_MAX for v in values):
            return dict(zip(names, values, strict=True))
        out: dict[str, float] = {}  # slow path: convert or explain
        for name, value in zip(names, values, strict=True):
            out[name] = check_number(
                value, f"features[{name!r}]", low=-FLOAT32_MAX, high=FLOAT32_MAX
            )
        return out

    @property
    def probability(self) -> float:
        """Probability with which the chosen action was drawn."""
        return self.probabilities[self.action_index]


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """The (first) observed outcome of a decision.

    >>> OutcomeRecord("d1", 1767229200.0, 12.5, "event", order_id="o9").reward
    12.5
    """

    decision_id: str
    timestamp: float
    reward: float
    source: str = "reward"
    order_id: str | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "decision_id", checked_text("decision_id", self.decision_id, 128))
        put(self, "timestamp", check_timestamp("timestamp", self.timestamp))
        put(self, "reward", check_number(self.reward, "reward"))
        if self.source not in OUTCOME_SOURCES:
            raise ValueError(f"source == {self.source!r}, must be one of {list(OUTCOME_SOURCES)}")
        if self.order_id is not None:
            put(self, "order_id", checked_text("order_id", self.order_id))


class OutcomeStatus(enum.StrEnum):
    """What the log did with an outcome."""

    ACCEPTED = "accepted"  #: first outcome of a known decision: stored
    DUPLICATE = "duplicate"  #: the decision already had an outcome: counted, not stored
    UNKNOWN = "unknown"  #: no such decision id: counted, logged at WARNING
    UNATTRIBUTED = "unattributed"  #: no decision of that user inside its window
    #: shared store: decision not stored yet; the store joins it when it arrives
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class OutcomeReceipt:
    """Answer of ``append_outcome`` / ``outcome_for_user``.

    Feed the learner only when :attr:`accepted` is true: that is the one outcome the log keeps.
    """

    decision_id: str | None
    status: OutcomeStatus

    @property
    def accepted(self) -> bool:
        """Whether the log kept this outcome (the one to feed the learner)."""
        return self.status is OutcomeStatus.ACCEPTED
