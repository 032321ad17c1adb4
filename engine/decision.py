"""What ``decide`` returns to checkout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, init=False)
class Decision:
    """One recovery decision.

    Attributes:
        decision_id: pass it back with :meth:`DecisionEngine.reward`.
        action: the action name to carry out (the vocabulary of docs/architecture.md).
        probability: probability with which ``action`` was chosen.
        probabilities: every eligible action's probability (sums to 1).
        payload: what checkout needs to act (``channel``, ``coupon_percent``, ``items``,
            ``offer``/``expires_at``...).
        model_version: the model that decided.
        fallback: True when the engine could not decide normally (bad input, internal error)
            and returned the safe fallback action.
        reason: why it fell back (the field and value at fault), else None.
    """

    decision_id: str
    action: str
    probability: float
    probabilities: dict[str, float]
    payload: dict[str, Any] = field(default_factory=dict)
    model_version: str = ""
    fallback: bool = False
    reason: str | None = None

    def __init__(
        self,
        decision_id: str,
        action: str,
        probability: float,
        probabilities: dict[str, float],
        payload: dict[str, Any] | None = None,
        model_version: str = "",
        fallback: bool = False,
        reason: str | None = None,
    ) -> None:
        # Written by hand: one dict update instead of the generated frozen __init__'s eight
        # object.__setattr__ calls (decide returns one Decision per call).
        self.__dict__.update(
            decision_id=decision_id,
            action=action,
            probability=probability,
            probabilities=probabilities,
            payload={} if payload is None else payload,
            model_version=model_version,
            fallback=fallback,
            reason=reason,
        )
