"""A daily coupon budget shared by every process of a store, spent through leases.

Each process holds a lease: a slice of the day's budget reserved from the store's ledger row
(``budget_ledger``) in one short transaction, then spent locally with no database round trip.
When the slice cannot pay for a coupon, the process reserves another slice (or what is left of
the budget); it returns what it did not spend when it closes, and when the UTC day changes.

**Bound: 0.** The ledger never reserves more than the budget (the row is locked while a slice
is granted), and a process spends only what it reserved: before a decision is sampled, the
largest coupon it may offer is *held* from the slice (:meth:`BudgetLease.hold`), and when the
decision is taken the hold is settled (:meth:`BudgetLease.settle`: the coupon given is spent,
the rest goes back to the slice). Concurrent threads hold separately, so however many processes
and threads decide at once, the coupons committed never exceed the budget. Under-use is bounded
too: a process stops giving coupons when neither its slice nor the ledger can pay for the
cheapest one, so at most ``processes x cheapest coupon`` stays unspent (plus what threads hold
at that instant), plus the unspent slices of processes that died (the ledger cannot know what
they spent, so it keeps them reserved: never an overspend).

**Failure.** If the store cannot be reached when a slice is needed, coupons stop (fail closed):
only what is already reserved can be spent; the store is tried again after
:data:`ERROR_BACKOFF_S` (10 s).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from typing import Any

import psycopg

from engine.model_loop.registry import connect
from engine.validation import check_non_negative, check_positive

__all__ = ["BudgetLease"]

logger = logging.getLogger(__name__)

ERROR_BACKOFF_S = 10.0  #: after a store error, no reservation is tried for this long


class BudgetLease:
    """This process's lease on the store's daily coupon budget.

    Args:
        url: the ``postgresql://`` store.
        budget: the daily budget; the first process to open a day sets the ledger row's budget.
        slice_size: what one reservation asks for (default: 2% of the budget).
        retry_seconds: how long to wait before asking the store again after it refused (budget
            spent) or failed.
        holder: names the lease's holder in the ledger (default: a random id).
    """

    def __init__(
        self,
        url: str,
        budget: float,
        *,
        slice_size: float | None = None,
        retry_seconds: float = 1.0,
        holder: str | None = None,
    ) -> None:
        self.url = url
        self.budget = check_non_negative(budget, "daily_coupon_budget")
        self.slice_size = check_positive(
            slice_size if slice_size is not None else max(self.budget * 0.02, 1e-9), "slice_size"
        )
        self.retry_seconds = check_positive(retry_seconds, "retry_seconds")
        self.lease_id = holder or uuid.uuid4().hex
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._day = -1
        self._remaining = 0.0  # reserved for self._day and not spent yet
        self._reserved = 0.0  # reserved for self._day in total
        self._spent = 0.0
        self._quiet_until = 0.0  # no store call before this (monotonic): refused or failing
        self.counts = {"reservations": 0, "refused": 0, "store_errors": 0}

    def hold(self, day: int, cost: float) -> bool:
        """Set ``cost`` aside for a decision of ``day`` (may reserve a slice).

        False if the slice and the ledger cannot pay it. Every True must be followed by
        :meth:`settle`.
        """
        with self._lock:
            if day != self._day:
                self._switch_day(day)
            if self._remaining < cost:
                if time.monotonic() < self._quiet_until:
                    return False
                self._reserve(day, cost - self._remaining)
                if self._remaining < cost:
                    return False
            self._remaining -= cost
            return True

    def settle(self, day: int, held: float, spent: float) -> None:
        """A decision that held ``held`` gave a coupon of ``spent`` (<= ``held``; 0: none)."""
        with self._lock:
            if day != self._day:  # the day's unspent part was already returned
                return
            self._remaining += held - spent
            self._spent += spent

    def state(self) -> dict[str, Any]:
        """Day, reserved, spent and remaining of this lease, and its counters."""
        with self._lock:
            return {
                "day": self._day,
                "reserved": self._reserved,
                "spent": self._spent,
                "remaining": self._remaining,
                **self.counts,
            }

    def close(self) -> None:
        """Return the unspent part of the slice to the ledger and close the connection."""
        with self._lock:
            self._give_back()
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    # ------------------------------------------------------------------ internals
    def _switch_day(self, day: int) -> None:
        self._give_back()
        self._day, self._remaining, self._reserved, self._spent = day, 0.0, 0.0, 0.0
        self._quiet_until = 0.0

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url)
        return self._conn

    def _reserve(self, day: int, need: float) -> None:
        ask = max(self.slice_size, need)
        try:
            conn = self._connection()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO budget_ledger (day, budget) VALUES (%s, %s)"
                    " ON CONFLICT (day) DO NOTHING",
                    (day, self.budget),
                )
                budget, reserved = conn.execute(
                    "SELECT budget, reserved FROM budget_ledger WHERE day = %s FOR UPDATE", (day,)
                ).fetchone() or (0.0, 0.0)
                grant = max(0.0, min(ask, budget - reserved))
                if grant > 0.0:
                    conn.execute(
                        "UPDATE budget_ledger SET reserved = reserved + %s WHERE day = %s",
                        (grant, day),
                    )
                    conn.execute(
                        "INSERT INTO budget_leases AS l (lease_id, day, holder, reserved)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT (lease_id) DO UPDATE"
                        " SET reserved = l.reserved + excluded.reserved, updated_at = now()",
                        (f"{self.lease_id}:{day}", day, self.lease_id, grant),
                    )
        except psycopg.Error as exc:
            self.counts["store_errors"] += 1
            # a store that does not answer may cost a connect timeout: try it less often
            self._quiet_until = time.monotonic() + max(self.retry_seconds, ERROR_BACKOFF_S)
            logger.warning(
                "coupon budget: store unreachable (%s); coupons stop beyond the reserved slice",
                type(exc).__name__,
            )
            self._drop()
            return
        self.counts["reservations"] += 1
        self._remaining += grant
        self._reserved += grant
        if grant < need:
            self.counts["refused"] += 1
            self._quiet_until = time.monotonic() + self.retry_seconds

    def _give_back(self) -> None:
        unused = self._remaining
        if self._day < 0 or unused <= 0.0:
            return
        try:
            conn = self._connection()
            with conn.transaction():
                conn.execute(
                    "UPDATE budget_ledger SET reserved = greatest(reserved - %s, 0) WHERE day = %s",
                    (unused, self._day),
                )
                conn.execute(
                    "UPDATE budget_leases SET returned = returned + %s, closed = true,"
                    " updated_at = now() WHERE lease_id = %s",
                    (unused, f"{self.lease_id}:{self._day}"),
                )
        except psycopg.Error as exc:  # kept reserved: under-use, never overspend
            self.counts["store_errors"] += 1
            logger.warning("coupon budget: could not return %.2f (%s)", unused, type(exc).__name__)
            self._drop()
            return
        self._remaining = 0.0
        self._reserved -= unused

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
