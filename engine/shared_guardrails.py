"""Guardrails that hold across every process of a PostgreSQL store.

:class:`SharedGuardrails` is what :class:`~engine.guardrails.Guardrails` consults when the
engine's decision log is a shared store: the daily coupon budget through a
:class:`~engine.budget_lease.BudgetLease` (no round trip per decision; overspend bound in that
module), and the contact cap through :class:`~engine.contact_caps.ContactCaps` (a slot claimed
atomically in the store before a contact action may be sampled, given back if the decision does
not contact). Store unreachable: coupons stop once the reserved slice is spent (fail closed);
contact caps fall back to the per-process count; every other action goes on.
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

    def decided(self, user_key: str, now: float, contacted: bool) -> None:
        """The decision for ``user_key`` at ``now`` was taken: give back an unused slot."""
        if self.caps is None:
            return
        key = (user_key, now)
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

    def coupon_allowed(self, now: float, cost: float) -> bool:
        """Whether the shared budget can pay a coupon of ``cost`` on ``now``'s UTC day."""
        return self.budget is None or self.budget.allows(int(now // DAY), cost)

    def coupon_given(self, now: float, cost: float) -> None:
        """Spend ``cost`` of the shared budget on ``now``'s UTC day."""
        if self.budget is not None:
            self.budget.spend(int(now // DAY), cost)

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
