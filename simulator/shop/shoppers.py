"""The shoppers' evolving state: activity counters, contact fatigue, coupon expectation, histories.

Resolved carts change it through one vectorised update, :meth:`ShopperState.record_outcomes`, which
both environments use. Contact fatigue and coupon expectation decay exponentially between events
(:func:`decayed`, time constants from :mod:`simulator.shop.response`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.shop.constants import ACTION_NAMES, COUPON_PERCENT, DAY
from simulator.shop.history import EventStore, RecentRecords
from simulator.shop.response import CONDITIONING_STEP, EXPECTATION_DAYS, FATIGUE_DAYS

MAX_LINES = 4
"""Lines per cart and per order."""
NONE = ACTION_NAMES.index("none")
COUPON_OF_ACTION = np.array([COUPON_PERCENT.get(a, 0) for a in ACTION_NAMES], dtype=np.int64)
"""Coupon percent each action gives (0 for actions without a coupon), in ``ACTION_NAMES`` order."""
_SCALAR_BUILD = 3  # up to this many records are built element by element


def decayed(level: Any, since: Any, now: Any, days: float) -> Any:
    """``level``, set at time ``since``, decayed exponentially to ``now`` (time scale ``days``)."""
    return level * np.exp(-(now - since) / (days * DAY))


def _latest(shopper: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct shoppers (sorted), each row's index among them, and each one's latest time."""
    distinct, inverse = np.unique(shopper, return_inverse=True)
    latest = np.full(len(distinct), -np.inf)
    np.maximum.at(latest, inverse, time)
    return distinct, inverse, latest


class ShopperState:
    """Per-shopper counters, fatigue, coupon expectation and order/contact histories (``n`` each).

    Args:
        n: number of shoppers.
        start_time: the shop's clock when Cartwise is switched on (unix seconds).
        item_ids: catalogue item ids, to build order records.
        keep: history records kept per shopper for context records.
    """

    def __init__(self, n: int, start_time: float, item_ids: list[str], keep: int) -> None:
        self.n_orders = np.zeros(n, dtype=np.int64)
        self.sessions = np.zeros(n, dtype=np.int64)
        self.views = np.zeros(n, dtype=np.int64)
        self.carts_abandoned = np.zeros(n, dtype=np.int64)
        self.first_seen = np.full(n, float(start_time))
        self.last_order_time = np.full(n, -np.inf)
        self.order_value_sum = np.zeros(n)  # paid value of all orders (usual basket: / n_orders)
        self.coupon_orders = np.zeros(n, dtype=np.int64)
        self.discount_sum = np.zeros(n)
        self.n_contacts = np.zeros(n, dtype=np.int64)
        self.n_converted = np.zeros(n, dtype=np.int64)
        self.fatigue_load = np.zeros(n)
        self.fatigue_time = np.full(n, float(start_time))
        self.expectation = np.zeros(n)
        self.expectation_time = np.full(n, float(start_time))
        self.orders = EventStore(
            n,
            {
                "time": np.float64,
                "items": (np.int32, MAX_LINES),
                "value": np.float64,
                "coupon": np.int8,
                "recovered_by": np.int8,
            },
        )
        self.contacts = EventStore(
            n, {"time": np.float64, "action": np.int8, "converted": np.bool_}
        )
        self._item_ids = item_ids
        self._built_upto = {"orders": 0, "contacts": 0}
        self.recent_orders = RecentRecords(self.orders, self._build_order_records, keep)
        self.recent_contacts = RecentRecords(self.contacts, self._build_contact_records, keep)

    # ------------------------------------------------------------------ reading
    def fatigue_at(self, s: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """Contact fatigue of shoppers ``s`` at time(s) ``t``."""
        return decayed(self.fatigue_load[s], self.fatigue_time[s], t, FATIGUE_DAYS)

    def expectation_at(self, s: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        """Coupon expectation of shoppers ``s`` at time(s) ``t``."""
        return decayed(self.expectation[s], self.expectation_time[s], t, EXPECTATION_DAYS)

    # ------------------------------------------------------------------ updates
    def add_orders(
        self,
        shopper: np.ndarray,
        time: np.ndarray,
        items: np.ndarray,
        value: np.ndarray,
        coupon: np.ndarray,
        recovered_by: np.ndarray,
    ) -> None:
        """Record completed orders: history events and the shoppers' order counters.

        ``value`` is the cart value before the coupon; the order's paid value is rounded to cents.
        """
        paid = np.round(value * (1.0 - coupon / 100.0), 2)
        self.orders.extend(
            shopper, time=time, items=items, value=paid, coupon=coupon, recovered_by=recovered_by
        )
        np.add.at(self.n_orders, shopper, 1)
        np.add.at(self.order_value_sum, shopper, paid)
        used = coupon > 0
        np.add.at(self.coupon_orders, shopper[used], 1)
        np.add.at(self.discount_sum, shopper[used], coupon[used])
        np.maximum.at(self.last_order_time, shopper, time)

    def record_outcomes(
        self,
        shopper: np.ndarray,
        time: np.ndarray,
        type_index: np.ndarray,
        actions: np.ndarray,
        converted: np.ndarray,
        items: np.ndarray,
        value: np.ndarray,
        delay_hours: np.ndarray,
    ) -> None:
        """Apply resolved carts: one abandoned cart each, and what each action and outcome adds.

        Every action but ``none`` is a contact (fatigue), coupons condition the shopper, and every
        conversion is an order.

        Carts are simultaneous: several carts of one shopper all count, and fatigue and expectation
        decay to the shopper's latest cart before their increments are added.
        """
        np.add.at(self.carts_abandoned, shopper, 1)
        self.record_contacts(shopper, time, type_index, actions, converted)
        coupon = COUPON_OF_ACTION[actions]
        if converted.any():
            a = actions[converted]
            self.add_orders(
                shopper[converted],
                time[converted] + delay_hours[converted] * 3600.0,
                items[converted],
                value[converted],
                coupon[converted],
                np.where(a == NONE, -1, a),
            )

    def record_contacts(
        self,
        shopper: np.ndarray,
        time: np.ndarray,
        type_index: np.ndarray,
        actions: np.ndarray,
        converted: np.ndarray,
    ) -> None:
        """Apply recovery actions sent (rows with ``none`` are skipped).

        Contact history and fatigue for every contact, coupon conditioning for coupons. Rows are
        simultaneous, as in :meth:`record_outcomes`.
        """
        sent = actions != NONE
        if sent.any():
            ss, ts = shopper[sent], time[sent]
            distinct, inverse, latest = _latest(ss, ts)
            self.fatigue_load[distinct] = decayed(
                self.fatigue_load[distinct], self.fatigue_time[distinct], latest, FATIGUE_DAYS
            )
            np.add.at(self.fatigue_load, ss, decayed(1.0, ts, latest[inverse], FATIGUE_DAYS))
            self.fatigue_time[distinct] = latest
            np.add.at(self.n_contacts, ss, 1)
            np.add.at(self.n_converted, ss, converted[sent].astype(np.int64))
            self.contacts.extend(ss, time=ts, action=actions[sent], converted=converted[sent])
        coupon = COUPON_OF_ACTION[actions]
        got = coupon > 0
        if got.any():
            distinct, inverse, latest = _latest(shopper[got], time[got])
            keep = np.ones(len(distinct))
            np.multiply.at(keep, inverse, 1.0 - CONDITIONING_STEP[type_index[got]])
            e = decayed(
                self.expectation[distinct],
                self.expectation_time[distinct],
                latest,
                EXPECTATION_DAYS,
            )
            self.expectation[distinct] = (
                1.0 - (1.0 - e) * keep
            )  # each coupon: e -> e + step (1 - e)
            self.expectation_time[distinct] = latest

    # ------------------------------------------------------------------ history records
    def build_new_records(self) -> None:
        """Build, in bulk, the records of every event not built yet.

        So contexts seldom build records one at a time.
        """
        for name, store, build in (
            ("orders", self.orders, self._build_order_records),
            ("contacts", self.contacts, self._build_contact_records),
        ):
            records = store.records
            missing = [j for j in range(self._built_upto[name], store.n) if records[j] is None]
            if missing:
                build(missing)
            self._built_upto[name] = store.n

    def _build_order_records(self, idx: list[int]) -> None:
        """Build (once) and cache the record dicts of the given order events."""
        cols = self.orders.columns
        ids = self._item_ids
        if len(idx) <= _SCALAR_BUILD:  # a few events: element reads beat fancy indexing
            rows = [
                (
                    cols["time"][j].item(),
                    cols["items"][j].tolist(),
                    cols["value"][j].item(),
                    cols["coupon"][j].item(),
                    cols["recovered_by"][j].item(),
                )
                for j in idx
            ]
            times, items, values, coupons, recovered = (list(c) for c in zip(*rows, strict=True))
        else:
            times = cols["time"][idx].tolist()
            items = cols["items"][idx].tolist()
            values = cols["value"][idx].tolist()
            coupons = cols["coupon"][idx].tolist()
            recovered = cols["recovered_by"][idx].tolist()
        records = self.orders.records
        for k, j in enumerate(idx):
            records[j] = {
                "timestamp": times[k],
                "items": [ids[x] for x in items[k] if x >= 0],
                "value": values[k],
                "coupon_percent": coupons[k],
                "recovered_by": ACTION_NAMES[recovered[k]] if recovered[k] >= 0 else None,
            }

    def _build_contact_records(self, idx: list[int]) -> None:
        """Build (once) and cache the record dicts of the given contact events."""
        cols = self.contacts.columns
        if len(idx) <= _SCALAR_BUILD:
            times = [cols["time"][j].item() for j in idx]
            actions = [cols["action"][j].item() for j in idx]
            converted = [cols["converted"][j].item() for j in idx]
        else:
            times = cols["time"][idx].tolist()
            actions = cols["action"][idx].tolist()
            converted = cols["converted"][idx].tolist()
        records = self.contacts.records
        for k, j in enumerate(idx):
            records[j] = {
                "timestamp": times[k],
                "action": ACTION_NAMES[actions[k]],
                "converted": converted[k],
            }
