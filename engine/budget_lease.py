"""A daily coupon budget shared by every process of a store, spent through leases.

Each process holds a lease: a slice of the day's budget reserved from the store's ledger row
(``budget_ledger``) in one short transaction, then spent locally with no database round trip.
The ledger is only ever called by the lease's background thread: once the slice falls below
half a slice (or cannot pay for a coupon), the thread reserves another slice (or what is left of
the budget). A decision that finds the slice short waits for a reservation on its way only
until :data:`WAIT_SECONDS` (50 ms) after it was asked for, so a store that hangs costs no
decision more than that, where it used to cost a connect timeout (3 s). The thread
also returns what a day left unspent when the UTC day changes; :meth:`BudgetLease.close` returns
the rest.

**Bound: 0.** The ledger never reserves more than the budget (the row is locked while a slice
is granted), and a process spends only what it reserved: before a decision is sampled, the
largest coupon it may offer is *held* from the slice (:meth:`BudgetLease.hold`), and when the
decision is taken the hold is settled (:meth:`BudgetLease.settle`: the coupon given is spent,
the rest goes back to the slice). Concurrent threads hold separately, so however many processes
and threads decide at once, the coupons committed never exceed the budget. Under-use is bounded
too: a process stops giving coupons when neither its slice nor the ledger can pay for the
cheapest one, so at most ``processes x cheapest coupon`` stays unspent (plus what threads hold
at that instant), plus the unspent slices of processes that died (the ledger cannot know what
they spent, so it keeps them reserved: never an overspend). A decision that finds the slice
short once that wait is over gets no coupon (under-use while the store is slow).

**Failure.** If the store cannot be reached when a slice is needed, coupons stop (fail closed):
only what is already reserved can be spent; the store is tried again after
:data:`ERROR_BACKOFF_S` (10 s). A store that hangs costs the background thread its connect
timeout, never a decision.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from typing import Any

import psycopg

from engine.decision_log.postgres import CONNECT_TIMEOUT_S
from engine.model_loop.registry import connect
from engine.validation import check_non_negative, check_positive

__all__ = ["BudgetLease"]

logger = logging.getLogger(__name__)

ERROR_BACKOFF_S = 10.0  #: after a store error, no reservation is tried for this long
WAIT_SECONDS = 0.05  #: a hold waits for a reservation at most this long after it was asked for


class BudgetLease:
    """This process's lease on the store's daily coupon budget.

    Args:
        url: the ``postgresql://`` store.
        budget: the daily budget; the first process to open a day sets the ledger row's budget.
        slice_size: what one reservation asks for (default: 2% of the budget).
        retry_seconds: how long to wait before asking the store again after it refused (budget
            spent) or failed.
        holder: names the lease's holder in the ledger (default: a random id).
        wait_seconds: how long after a reservation was asked for a hold may wait for it.
    """

    def __init__(
        self,
        url: str,
        budget: float,
        *,
        slice_size: float | None = None,
        retry_seconds: float = 1.0,
        holder: str | None = None,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self.url = url
        self.budget = check_non_negative(budget, "daily_coupon_budget")
        self.slice_size = check_positive(
            slice_size if slice_size is not None else max(self.budget * 0.02, 1e-9), "slice_size"
        )
        self.retry_seconds = check_positive(retry_seconds, "retry_seconds")
        self.lease_id = holder or uuid.uuid4().hex
        self.wait_seconds = check_non_negative(wait_seconds, "wait_seconds")
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # work for the background thread
        self._idle = threading.Condition(self._lock)  # the background thread finished its work
        self._thread: threading.Thread | None = None  # started by the first request
        self._stopping = False
        self._conn: psycopg.Connection[Any] | None = None  # the background thread's (then close's)
        self._day = -1
        self._remaining = 0.0  # reserved for self._day and not spent yet
        self._reserved = 0.0  # reserved for self._day in total
        self._spent = 0.0
        self._need = 0.0  # > 0 or _wanted: a reservation is asked for; at least this much
        self._wanted = False
        self._asked_at = 0.0  # when the reservation now wanted or on its way was asked for
        self._busy = False  # the background thread is talking to the store
        self._returns: list[tuple[int, float]] = []  # (day, amount) to give back to the ledger
        self._quiet_until = 0.0  # no store call before this (monotonic): refused or failing
        self.counts = {"reservations": 0, "refused": 0, "store_errors": 0}

    def hold(self, day: int, cost: float) -> bool:
        """Set ``cost`` aside for a decision of ``day``.

        If the slice is short, a reservation is asked for (unless the store refused or failed
        within ``retry_seconds``) and waited for until ``wait_seconds`` after it was asked for;
        False if the slice still cannot pay. Every True must be followed by :meth:`settle`.
        """
        with self._lock:
            if day != self._day:
                self._switch_day(day)
            deadline = None
            while self._remaining < cost:
                self._ask(cost - self._remaining)
                if not (self._wanted or self._busy):  # refused or failing: not asked
                    return False
                if deadline is None:
                    deadline = self._asked_at + self.wait_seconds
                left = deadline - time.monotonic()
                if left <= 0.0:
                    return False
                self._idle.wait(left)
                if day != self._day:  # another thread moved the lease to another day
                    return False
            self._remaining -= cost
            if self._remaining < 0.5 * self.slice_size:
                self._ask(0.0)  # the next slice is on its way before this one runs out
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
                "reserving": self._wanted or self._busy,
                **self.counts,
            }

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no reservation or return is pending; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._wanted or self._busy or self._returns:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._idle.wait(left)
            return True

    def close(self, timeout: float = 2.0 * CONNECT_TIMEOUT_S) -> None:
        """Stop the background thread, return the unspent part to the ledger, disconnect.

        If the thread is still waiting for the store after ``timeout`` seconds, the unspent part
        stays reserved (under-use, never an overspend).
        """
        with self._lock:
            self._stopping = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("coupon budget: the store does not answer; unspent part kept")
                return
        with self._lock:
            if self._day >= 0 and self._remaining > 0.0:
                self._returns.append((self._day, self._remaining))
            self._remaining = 0.0
            returns, self._returns = self._returns, []
        for day, amount in returns:
            self._give_back(day, amount)
        self._drop()

    # ------------------------------------------------------------------ internals
    def _switch_day(self, day: int) -> None:
        """Start ``day`` with an empty slice; the old day's unspent part goes back (lock held)."""
        if self._day >= 0 and self._remaining > 0.0:
            self._returns.append((self._day, self._remaining))
            self._start()
        self._day, self._remaining, self._reserved, self._spent = day, 0.0, 0.0, 0.0
        self._quiet_until = 0.0

    def _ask(self, need: float) -> None:
        """Ask the background thread for a slice of at least ``need`` (lock held)."""
        if self._stopping or self._busy or time.monotonic() < self._quiet_until:
            return
        if not self._wanted:
            self._asked_at = time.monotonic()
        self._wanted = True
        self._need = max(self._need, need)
        self._start()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="budget-lease", daemon=True)
            self._thread.start()
        self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not (self._stopping or self._wanted or self._returns):
                    self._wake.wait()
                if self._stopping:
                    self._idle.notify_all()
                    return
                returns, self._returns = self._returns, []
                wanted, day, need = self._wanted, self._day, self._need
                self._wanted, self._need, self._busy = False, 0.0, wanted
            for old_day, amount in returns:
                self._give_back(old_day, amount)
            if wanted:
                grant, error = self._reserve(day, max(self.slice_size, need))
                self._take(day, need, grant, error)
            with self._lock:
                self._busy = False
                self._idle.notify_all()

    def _take(self, day: int, need: float, grant: float, error: bool) -> None:
        """Add a reservation's ``grant`` to the slice, or return it if its day has passed."""
        with self._lock:
            now = time.monotonic()
            if error:
                self.counts["store_errors"] += 1
                # a store that does not answer may cost a connect timeout: try it less often
                self._quiet_until = now + max(self.retry_seconds, ERROR_BACKOFF_S)
                return
            self.counts["reservations"] += 1
            if grant <= 0.0 or grant < need:
                self.counts["refused"] += 1
                self._quiet_until = now + self.retry_seconds
            if day == self._day:
                self._remaining += grant
                self._reserved += grant
            elif grant > 0.0:  # the day changed while the store answered
                self._returns.append((day, grant))

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url)
        return self._conn

    def _reserve(self, day: int, ask: float) -> tuple[float, bool]:
        """Reserve up to ``ask`` of ``day``'s budget in the ledger: (granted, store error)."""
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
            logger.warning(
                "coupon budget: store unreachable (%s); coupons stop beyond the reserved slice",
                type(exc).__name__,
            )
            self._drop()
            return 0.0, True
        return grant, False

    def _give_back(self, day: int, unused: float) -> None:
        try:
            conn = self._connection()
            with conn.transaction():
                conn.execute(
                    "UPDATE budget_ledger SET reserved = greatest(reserved - %s, 0) WHERE day = %s",
                    (unused, day),
                )
                conn.execute(
                    "UPDATE budget_leases SET returned = returned + %s, closed = true,"
                    " updated_at = now() WHERE lease_id = %s",
                    (unused, f"{self.lease_id}:{day}"),
                )
        except psycopg.Error as exc:  # kept reserved: under-use, never overspend
            with self._lock:
                self.counts["store_errors"] += 1
            logger.warning("coupon budget: could not return %.2f (%s)", unused, type(exc).__name__)
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
