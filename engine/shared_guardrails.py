"""Guardrails that hold across every process of a PostgreSQL store.

:class:`SharedGuardrails` is what :class:`~engine.guardrails.Guardrails` consults when the
engine's decision log is a shared store: the daily coupon budget through a
:class:`~engine.budget_lease.BudgetLease` (no round trip per decision; the largest coupon a
decision may offer is held before it is sampled, so the budget is never exceeded), and the
contact cap through :class:`~engine.contact_caps.ContactCaps` (a slot claimed atomically in the
store before a contact action may be sampled, given back if the decision does not contact).
Store unreachable: coupons stop once the reserved slice is spent (fail closed); contact caps
fall back to the per-process count; every other action goes on.
"""

from __future__ import annotations

import threading
from typing import Any

from engine.actions import DAY
from engine.budget_lease import BudgetLease
from engine.contact_caps import ContactCaps

__all__ = ["SharedGuardrails"]


class SharedGuardrails:
    """The store-wide budget lease and contact caps of one engine.

    Args:
        url: the ``postgresql://`` store.
        daily_coupon_budget: the budget shared by every process (None: no budget).
        max_contacts: the cap shared by every process (None: no cap).
        contact_window_days: the cap's window.
        budget_slice: what one budget reservation asks for (default 2% of the budget).
    """

    def __init__(
        self,
        url: str,
        *,
        daily_coupon_budget: float | None,
        max_contacts: int | None,
        contact_window_days: float,
        budget_slice: float | None = None,
    ) -> None:
        self.budget = (
            BudgetLease(url, daily_coupon_budget, slice_size=budget_slice)
            if daily_coupon_budget is not None
            else None
        )
        self.caps = ContactCaps(url) if max_contacts is not None else None
        self.max_contacts = max_contacts
        self.window = contact_window_days * DAY
        self._claims: dict[tuple[str, float], int] = {}  # slots claimed, awaiting the decision
        self._holds: dict[tuple[str, float], list[float]] = {}  # budget held, awaiting it too
        self._lock = threading.Lock()

    def claim_contact(self, user_key: str, now: float, seen: list[float]) -> bool | None:
        """Claim a contact slot (see :meth:`ContactCaps.claim`); None: decide locally."""
        if self.caps is None or self.max_contacts is None:
            return None
        claimed = self.caps.claim(user_key, now, self.window, self.max_contacts, seen)
        if claimed:
            with self._lock:
                key = (user_key, now)
                self._claims[key] = self._claims.get(key, 0) + 1
        return claimed

    def decided(self, user_key: str, now: float, contacted: bool, coupon: float = 0.0) -> None:
        """The decision for ``user_key`` at ``now`` was taken (a coupon worth ``coupon``, or 0).

        Settles the budget held for it and gives back an unused contact slot.
        """
        key = (user_key, now)
        if self.budget is not None:
            with self._lock:
                holds = self._holds.get(key)
                held = holds.pop() if holds else None
                if holds == []:
                    del self._holds[key]
            if held is not None:
                self.budget.settle(int(now // DAY), held, min(coupon, held))
        if self.caps is None:
            return
        with self._lock:
            held = self._claims.get(key, 0)
            if not held:
                return
            if held == 1:
                del self._claims[key]
            else:
                self._claims[key] = held - 1
        if not contacted:
            self.caps.release(user_key, now)

    def coupons_allowed(self, user_key: str, now: float, costs: list[float]) -> list[bool]:
        """Which coupons (of these ``costs``) the shared budget can pay for this decision.

        The largest affordable one is held from the lease until :meth:`decided` settles it.
        """
        if self.budget is None:
            return [True] * len(costs)
        day = int(now // DAY)
        for cost in sorted(set(costs), reverse=True):
            if self.budget.hold(day, cost):
                with self._lock:
                    self._holds.setdefault((user_key, now), []).append(cost)
                return [c <= cost for c in costs]
        return [False] * len(costs)

    def state(self) -> dict[str, Any]:
        """The lease's and the caps' state."""
        return {
            "budget": self.budget.state() if self.budget is not None else None,
            "contact_caps": self.caps.state() if self.caps is not None else None,
        }

    def close(self) -> None:
        """Return the unspent budget and close connections."""
        if self.budget is not None:
            self.budget.close()
        if self.caps is not None:
            self.caps.close()
