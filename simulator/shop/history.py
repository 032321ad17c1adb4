"""Columnar, append-only event stores for shopper histories (orders and recovery contacts).

Events live in growable numpy columns; each shopper's events form a linked list (``prev``
pointers, newest first from ``head[shopper]``), so a batch of events is appended with a few
vectorised operations and one shopper's recent history is read by walking a short chain.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import numpy as np


class EventStore:
    """Append-only events with named numpy columns, chained per shopper.

    Example:
        >>> store = EventStore(n_shoppers=3, columns={"time": np.float64, "action": np.int8})
        >>> times, actions = np.array([1.0, 2.0, 3.0]), np.array([4, 5, 6])
        >>> store.extend(np.array([2, 0, 2]), time=times, action=actions)
        >>> store.extend(np.array([2]), time=np.array([4.0]), action=np.array([1]))
        >>> [int(store.columns["action"][j]) for j in store.chain(store.head[2])]
        [1, 6, 4]
    """

    def __init__(self, n_shoppers: int, columns: dict[str, type], capacity: int = 1024) -> None:
        self.n = 0
        self._capacity = capacity
        self._dtypes = dict(columns)
        self.columns: dict[str, np.ndarray] = {
            name: np.empty(capacity, dtype=dt) for name, dt in columns.items()
        }
        self.shopper = np.empty(capacity, dtype=np.int64)
        self.prev = np.empty(capacity, dtype=np.int64)
        self.head = np.full(n_shoppers, -1, dtype=np.int64)
        self.prev_list: list[int] = []  # mirror of ``prev`` for fast chain walks from Python
        self.records: list = []  # per-event cache slot for callers that build records lazily

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= self._capacity:
            return
        cap = max(need, 2 * self._capacity)
        for name, arr in self.columns.items():
            grown = np.empty((cap, *arr.shape[1:]), dtype=arr.dtype)
            grown[: self.n] = arr[: self.n]
            self.columns[name] = grown
        for attr in ("shopper", "prev"):
            arr = getattr(self, attr)
            grown = np.empty(cap, dtype=np.int64)
            grown[: self.n] = arr[: self.n]
            setattr(self, attr, grown)
        self._capacity = cap

    def extend(self, shopper: np.ndarray, **values: np.ndarray) -> None:
        """Append a batch of events; events of one shopper are chained in the given order."""
        k = len(shopper)
        if k == 0:
            return
        self._reserve(k)
        order = np.argsort(shopper, kind="stable")
        s_sorted = shopper[order]
        positions = self.n + np.arange(k)
        new_group = np.empty(k, dtype=bool)
        new_group[0] = True
        np.not_equal(s_sorted[1:], s_sorted[:-1], out=new_group[1:])
        prev = np.empty(k, dtype=np.int64)
        prev[1:] = positions[:-1]
        prev[new_group] = self.head[s_sorted[new_group]]
        last_of_group = np.append(new_group[1:], True)
        self.head[s_sorted[last_of_group]] = positions[last_of_group]
        sl = slice(self.n, self.n + k)
        self.shopper[sl] = s_sorted
        self.prev[sl] = prev
        self.prev_list.extend(prev.tolist())
        self.records.extend([None] * k)
        for name, column in self.columns.items():
            column[sl] = np.asarray(values[name])[order]
        self.n += k

    def chain(self, start: int, limit: int = 10**9) -> list[int]:
        """Event indices from ``start`` back along its shopper's chain, newest first."""
        out: list[int] = []
        prev = self.prev_list
        j = int(start)
        while j >= 0 and len(out) < limit:
            out.append(j)
            j = prev[j]
        return out


class RecentRecords:
    """Each shopper's newest built records of one store, kept sorted by time.

    Extended incrementally, so a context's history is a bisect slice instead of a chain walk.

    ``records(shopper, head, t_now, cap)`` returns the records of events up to ``head`` (a
    snapshot: the shopper's newest event index when the context was taken) with a timestamp
    ``<= t_now``, oldest first, at most ``cap``. A snapshot older than the cached one is served
    by a plain walk, so lazily built contexts of an earlier batch never see later events.

    Example:
        >>> store = EventStore(1, {"time": np.float64})
        >>> store.extend(np.array([0, 0, 0]), time=np.array([5.0, 1.0, 3.0]))
        >>> def build(idx):
        ...     for j in idx:
        ...         store.records[j] = {"timestamp": float(store.columns["time"][j])}
        >>> recent = RecentRecords(store, build, keep=10)
        >>> [r["timestamp"] for r in recent.records(0, store.head[0], t_now=4.0, cap=5)]
        [1.0, 3.0]
    """

    def __init__(self, store: EventStore, build: Callable[[list[int]], None], keep: int) -> None:
        self._store, self._build, self._keep = store, build, keep
        self._cache: dict[int, tuple[int, list[float], list[dict]]] = {}

    def records(self, shopper: int, head: int, t_now: float, cap: int) -> list[dict]:
        """``shopper``'s records up to event ``head`` and time ``t_now``, oldest first."""
        store, keep = self._store, self._keep
        cached = self._cache.get(shopper)
        if cached is not None and head < cached[0]:
            return self._walk(head, t_now, cap)
        if cached is None or (head == cached[0] and not cached[2]):
            new, times, recs = store.chain(head, keep), [], []
        else:
            cached_head, times, recs = cached
            new, prev, j = [], store.prev_list, int(head)
            while j > cached_head and len(new) < keep:
                new.append(j)
                j = prev[j]
            if j > cached_head:  # more new events than we keep: start afresh from them
                times, recs = [], []
        self._add(new, times, recs)
        self._cache[shopper] = (int(head), times, recs)
        hi = bisect.bisect_right(times, t_now)
        return recs[max(0, hi - cap) : hi]

    def _add(self, new: list[int], times: list[float], recs: list[dict]) -> None:
        records = self._store.records
        missing = [j for j in new if records[j] is None]
        if missing:
            self._build(missing)
        for j in reversed(new):  # oldest first: usually appended at the end
            rec = records[j]
            t = rec["timestamp"]
            k = bisect.bisect_right(times, t)
            times.insert(k, t)
            recs.insert(k, rec)
        if len(recs) > self._keep:
            del times[: -self._keep]
            del recs[: -self._keep]

    def _walk(self, head: int, t_now: float, cap: int) -> list[dict]:
        times: list[float] = []
        recs: list[dict] = []
        self._add(self._store.chain(head, self._keep), times, recs)
        hi = bisect.bisect_right(times, t_now)
        return recs[max(0, hi - cap) : hi]
