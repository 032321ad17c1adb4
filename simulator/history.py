"""Columnar, append-only event stores for shopper histories (orders and recovery contacts).

Events live in growable numpy columns; each shopper's events form a linked list (``prev``
pointers, newest first from ``head[shopper]``), so a batch of events is appended with a few
vectorised operations and one shopper's recent history is read by walking a short chain.
"""

from __future__ import annotations

import numpy as np


class EventStore:
    """Append-only events with named numpy columns, chained per shopper.

    Example:
        >>> store = EventStore(n_shoppers=3, columns={"time": np.float64, "action": np.int8})
        >>> store.extend(np.array([2, 0, 2]), time=np.array([1.0, 2.0, 3.0]), action=np.array([4, 5, 6]))
        >>> store.append(2, time=4.0, action=1)
        >>> [int(store.columns["action"][j]) for j in store.chain(store.head[2])]
        [1, 6, 4]
    """

    def __init__(self, n_shoppers: int, columns: dict[str, type], capacity: int = 1024) -> None:
        self.n = 0
        self._capacity = capacity
        self._dtypes = dict(columns)
        self.columns: dict[str, np.ndarray] = {name: np.empty(capacity, dtype=dt) for name, dt in columns.items()}
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
            grown = np.empty((cap,) + arr.shape[1:], dtype=arr.dtype)
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

    def append(self, shopper: int, **values: float) -> None:
        """Append one event (scalar fast path)."""
        self._reserve(1)
        j = self.n
        self.shopper[j] = shopper
        self.prev[j] = self.head[shopper]
        self.head[shopper] = j
        self.prev_list.append(int(self.prev[j]))
        self.records.append(None)
        for name, column in self.columns.items():
            column[j] = values[name]
        self.n += 1

    def chain(self, start: int, limit: int = 10**9) -> list[int]:
        """Event indices from ``start`` back along its shopper's chain, newest first."""
        out: list[int] = []
        prev = self.prev_list
        j = int(start)
        while j >= 0 and len(out) < limit:
            out.append(j)
            j = prev[j]
        return out
