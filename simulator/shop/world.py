"""The simulated shop: catalogue, shoppers, their evolving state, and batches of abandoned carts.

Both environments run on this one model. A *batch* is drawn in three steps, all vectorised:

1. :meth:`ShopWorld.draw_batch` — everything that does not depend on shopper state: who abandons
   when, the cart, the session, purchases made since the shopper's last abandoned cart, the
   uniforms that decide outcomes.
2. :meth:`ShopWorld.arrive` — per cart, in time order: record those purchases and sessions in the
   shopper's history; this is the moment the context record is "sent".
3. :meth:`ShopWorld.evaluate` — state-dependent truth: purchase probabilities and the expected
   profit of every action (from :mod:`simulator.shop.response`), action masks, observations.

:meth:`ShopWorld.resolve` then realises the chosen actions' outcomes and updates shoppers (contact
fatigue, coupon expectation, orders). Carts within one batch are simultaneous: they see the state
from before the batch (the single-cart env re-evaluates a cart whose shopper changed since).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.shop.catalog import Catalog
from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_CHANNELS, ACTION_NAMES, CHANNELS, COUPON_PERCENT, DAY, DEVICES
from simulator.shop.history import EventStore, RecentRecords
from simulator.shop.population import Population
from simulator.shop.response import (
    CONDITIONING_STEP,
    DISCOUNT,
    EXPECTATION_DAYS,
    FATIGUE_DAYS,
    cart_response,
)

_SCALAR_BUILD = 3  # up to this many records are built element by element
MAX_LINES = 4
MAX_DIRECT = 2
OBS_NAMES: tuple[str, ...] = (
    "log_cart_value", "cart_lines", "log_session_views", "log_minutes_cart_to_abandon",
    "log_minutes_since_abandon", "shipping_page_views", "hour_sin", "hour_cos",
    "device_mobile", "device_desktop", "device_tablet", "log_sessions", "log_product_views",
    "log_orders", "coupon_order_share", "mean_discount_depth", "recency", "log_contacts",
    "contact_conversion_rate", "email_opt_in", "sms_opt_in", "push_opt_in",
    "log_sessions_per_order", "log_carts_abandoned",
)
OBS_LOW = np.array([0, 1, 0, 0, 0, 0, -1, -1] + [0] * 16, dtype=np.float32)
OBS_HIGH = np.array([12, MAX_LINES, 8, 10, 10, 20, 1, 1, 1, 1, 1, 12, 14, 8, 1, 1, 1, 8, 1, 1, 1, 1, 8, 10],
                    dtype=np.float32)

# Session habits by type (hesitant, price_sensitive, impulsive, forgetful): noisy evidence of type.
_VIEWS_MEAN = np.array([10.0, 7.0, 4.5, 6.0])
_MIN_TO_ABANDON = np.array([14.0, 9.0, 4.0, 8.0])  # median minutes from add-to-cart to abandonment
_SHIPPING_VIEWS = np.array([0.7, 1.2, 0.4, 0.5])
_HOUR_MEAN = np.array([19.0, 19.0, 21.5, 15.0])
_SESSIONS_PER_CART = np.array([2.8, 2.4, 1.8, 2.1])
_DIRECT_COUPON_SHARE = np.array([0.10, 0.25, 0.07, 0.07])
_ACTION_MASK_MATRIX = np.array(
    [[a == "none" or c in ACTION_CHANNELS[a] for a in ACTION_NAMES] for c in CHANNELS]
)  # (3 channels, 7 actions)
_COUPON_FOR_ACTION = tuple(COUPON_PERCENT.get(a, 0) for a in ACTION_NAMES)
_COUPON_ARRAY = np.array(_COUPON_FOR_ACTION, dtype=np.int64)


@dataclass
class CartBatch:
    """A batch of abandoned carts (arrays of length ``n``)."""

    shopper: np.ndarray
    time: np.ndarray
    items: np.ndarray  # (n, MAX_LINES) item index, -1 = no line
    quantity: np.ndarray  # (n, MAX_LINES)
    value: np.ndarray
    margin: np.ndarray
    hour: np.ndarray
    views: np.ndarray
    session_seconds: np.ndarray
    minutes_to_abandon: np.ndarray
    minutes_since_abandon: np.ndarray
    shipping_views: np.ndarray
    sessions_since: np.ndarray
    views_since: np.ndarray
    direct_items: np.ndarray  # (n, MAX_DIRECT, 2) item index, -1 = none
    direct_coupon: np.ndarray  # (n, MAX_DIRECT) coupon percent used on direct orders
    direct_time: np.ndarray  # (n, MAX_DIRECT) timestamps
    outcome_u: np.ndarray  # uniforms that decide purchases
    purchase_delay_hours: np.ndarray
    # Filled by arrive/evaluate:
    type_index: np.ndarray = field(default=None)  # type at arrival
    history_head: np.ndarray = field(default=None)  # (n, 2) newest order/contact event at arrival
    counters: np.ndarray = field(default=None)  # (n, 3) sessions, views, carts abandoned at arrival
    expected_reward: np.ndarray = field(default=None)
    purchase_probability: np.ndarray = field(default=None)
    cost_if_bought: np.ndarray = field(default=None)
    contact_cost: np.ndarray = field(default=None)
    action_mask: np.ndarray = field(default=None)
    observation: np.ndarray = field(default=None)

    def __len__(self) -> int:
        return len(self.shopper)


class ShopWorld:
    """Catalogue + population + state + clock, driven by one ``np.random.Generator``."""

    def __init__(self, config: SimConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        catalog_rng = np.random.default_rng(config.seed_catalog) if config.seed_catalog is not None else rng
        self.catalog = Catalog.generate(config.n_items, config.n_categories, config.n_factors, catalog_rng)
        self.population = Population.generate(
            config.n_shoppers, dict(config.type_mixture), self.catalog, config.pool_size, rng
        )
        self.clock = float(config.start_time)
        self.episodes = 0
        self.shifted = config.mixture_shift is None
        self._activity_cdf = np.cumsum(self.population.activity) / self.population.activity.sum()
        pool_cdf = np.cumsum(np.exp(self.population.pool_logp), axis=1)
        self._pool_cdf = pool_cdf / pool_cdf[:, -1:]
        self._alias_prob, self._alias = _alias_table(self.population.activity)
        self._mask = ((self.population.channels.astype(np.int64) @ _ACTION_MASK_MATRIX.astype(np.int64)) > 0).astype(np.int8)
        self._mask[:, 0] = 1  # doing nothing is always possible
        self._static_obs = np.eye(len(DEVICES), dtype=np.float32)[self.population.device]  # device one-hot
        self._item_ids = self.catalog.item_ids
        self._cat_of_item = [self.catalog.category_names[c] for c in self.catalog.category]
        self._price = self.catalog.price.tolist()
        self._init_state()

    # ------------------------------------------------------------------ state
    def _init_state(self) -> None:
        cfg, pop, rng = self.config, self.population, self.rng
        n = pop.n
        t0 = cfg.start_time
        rel_activity = pop.activity / pop.activity.mean()
        n_orders = rng.poisson(cfg.initial_orders_mean * rel_activity)
        self.n_orders = np.zeros(n, dtype=np.int64)
        self.sessions = (n_orders * _SESSIONS_PER_CART[pop.type_index] * 1.5).astype(np.int64) + rng.poisson(2, n)
        self.views = rng.poisson(self.sessions * _VIEWS_MEAN[pop.type_index] * 0.7).astype(np.int64)
        self.carts_abandoned = rng.poisson(n_orders / cfg.completed_per_abandoned * 0.5).astype(np.int64)
        self.first_seen = t0 - rng.uniform(30, 720, n) * DAY
        self.last_order_time = np.full(n, -np.inf)
        self.coupon_orders = np.zeros(n, dtype=np.int64)
        self.discount_sum = np.zeros(n)
        self.n_contacts = np.zeros(n, dtype=np.int64)
        self.n_converted = np.zeros(n, dtype=np.int64)
        self.fatigue_load = np.zeros(n)
        self.fatigue_time = np.full(n, t0)
        self.expectation = np.zeros(n)
        self.expectation_time = np.full(n, t0)
        self.orders = EventStore(n, {"time": np.float64, "items": (np.int32, MAX_LINES), "value": np.float64,
                                     "coupon": np.int8, "recovered_by": np.int8})
        self.contacts = EventStore(n, {"time": np.float64, "action": np.int8, "converted": np.bool_})
        keep = 2 * cfg.history_cap
        self._built_upto: dict[int, int] = {}
        self._recent_orders = RecentRecords(self.orders, self._build_order_records, keep)
        self._recent_contacts = RecentRecords(self.contacts, self._build_contact_records, keep)
        # Initial purchase histories (what the shop knows on the day Cartwise is switched on).
        owner = np.repeat(np.arange(n), n_orders)
        times = t0 - rng.uniform(1, 180, len(owner)) * DAY
        order = np.lexsort((times, owner))
        owner, times = owner[order], times[order]
        first_order = np.full(n, np.inf)
        np.minimum.at(first_order, owner, times)
        self.first_seen = np.minimum(self.first_seen, first_order - DAY)
        items = self._pool_items(owner, two_share=0.4)
        coupon = np.where(rng.random(len(owner)) < _DIRECT_COUPON_SHARE[pop.type_index[owner]],
                          rng.choice(np.array([5, 10, 20]), size=len(owner)), 0)
        self._add_orders(owner, times, items, coupon, np.full(len(owner), -1))

    def _sample_pool(self, shopper: np.ndarray, k: int) -> np.ndarray:
        """``k`` independent draws per row from each shopper's taste pool (item indices)."""
        u = self.rng.random((len(shopper), k, 1))
        rank = (self._pool_cdf[shopper][:, None, :] < u).sum(axis=2)
        rank = np.minimum(rank, self.config.pool_size - 1)
        return np.take_along_axis(self.population.pool_items[shopper], rank, axis=1)

    def _pool_items(self, shopper: np.ndarray, two_share: float) -> np.ndarray:
        """Items of completed orders: one or two lines drawn from each shopper's taste pool."""
        pop, rng = self.population, self.rng
        keys = pop.pool_logp[shopper] + rng.gumbel(size=(len(shopper), self.config.pool_size))
        top = np.argpartition(-keys, 1, axis=1)[:, :2]
        items = np.full((len(shopper), MAX_LINES), -1, dtype=np.int64)
        items[:, :2] = np.take_along_axis(pop.pool_items[shopper], top, axis=1)
        items[rng.random(len(shopper)) >= two_share, 1] = -1
        return items

    def _add_orders(self, shopper: np.ndarray, time: np.ndarray, items: np.ndarray, coupon: np.ndarray,
                    recovered_by: np.ndarray, value: np.ndarray | None = None) -> None:
        """Record completed orders (vectorised): history events and the shopper counters."""
        if value is None:
            safe = np.maximum(items, 0)
            value = np.where(items >= 0, self.catalog.price[safe], 0.0).sum(axis=1)
        paid = np.round(value * (1.0 - coupon / 100.0), 2)
        self.orders.extend(shopper, time=time, items=items, value=paid, coupon=coupon, recovered_by=recovered_by)
        np.add.at(self.n_orders, shopper, 1)
        used = coupon > 0
        np.add.at(self.coupon_orders, shopper[used], 1)
        np.add.at(self.discount_sum, shopper[used], coupon[used])
        np.maximum.at(self.last_order_time, shopper, time)

    # ------------------------------------------------------------------ batches
    def draw_batch(self, n: int) -> CartBatch:
        """Draw ``n`` abandoned carts in time order (state-independent parts only)."""
        cfg, pop, rng, cat = self.config, self.population, self.rng, self.catalog
        self._maybe_shift()
        gaps = rng.exponential(DAY / cfg.carts_per_day, n)
        time = self.clock + np.cumsum(gaps)
        self.clock = float(time[-1])
        self.episodes += n
        shopper = self._draw_shoppers(n, time)
        t = pop.type_index[shopper]

        n_lines = 1 + rng.binomial(MAX_LINES - 1, 0.3, n)
        draws = self._sample_pool(shopper, MAX_LINES + 2 * MAX_DIRECT)  # cart lines, then direct orders
        items = draws[:, :MAX_LINES].copy()
        duplicate = np.zeros((n, MAX_LINES), dtype=bool)
        for j in range(1, MAX_LINES):
            duplicate[:, j] = (items[:, :j] == items[:, j:j + 1]).any(axis=1)
        items[duplicate | (np.arange(MAX_LINES)[None, :] >= n_lines[:, None])] = -1
        items = -np.sort(-items, axis=1)  # lines first, padding last
        quantity = np.where(items >= 0, 1 + (rng.random((n, MAX_LINES)) < 0.1), 0)
        safe = np.maximum(items, 0)
        line_value = cat.price[safe] * quantity
        value = line_value.sum(axis=1)
        margin = (line_value * cat.margin_rate[safe]).sum(axis=1)

        hour = np.mod(np.round(rng.normal(_HOUR_MEAN[t], 5.0)), 24).astype(np.int64)
        views = 1 + rng.poisson(_VIEWS_MEAN[t] * rng.lognormal(0, 0.7, n))
        session_seconds = np.round(views * rng.uniform(25, 70, n), 1)
        minutes_to_abandon = np.round(_MIN_TO_ABANDON[t] * rng.lognormal(0, 1.1, n), 2)
        minutes_since = np.round(45.0 * rng.lognormal(0, 1.0, n), 1)
        shipping = rng.poisson(_SHIPPING_VIEWS[t])
        sessions_since = 1 + rng.poisson(_SESSIONS_PER_CART[t] - 1)
        views_since = rng.poisson(sessions_since * _VIEWS_MEAN[t] * 0.7 * rng.lognormal(0, 0.5, n)) + views

        # Purchases completed without abandonment since this shopper's previous abandoned cart:
        # 30.2% of carts are bought in-session (Baymard's 69.8% abandonment).
        n_direct = np.minimum(rng.poisson(cfg.completed_per_abandoned, n), MAX_DIRECT)
        direct_items = draws[:, MAX_LINES:].reshape(n, MAX_DIRECT, 2)
        direct_items[:, :, 1][(rng.random((n, MAX_DIRECT)) < 0.6) | (direct_items[:, :, 1] == direct_items[:, :, 0])] = -1
        direct_items[np.arange(MAX_DIRECT)[None, :] >= n_direct[:, None]] = -1
        direct_coupon = np.where(
            rng.random((n, MAX_DIRECT)) < _DIRECT_COUPON_SHARE[t][:, None],
            rng.choice(np.array([5, 10, 20]), size=(n, MAX_DIRECT)), 0)
        direct_time = time[:, None] - rng.uniform(1, 20, (n, MAX_DIRECT)) * DAY
        outcome_u = rng.random(n)
        # SeeWhy: ~72% of recovered purchases within 12 h, ~80% within 3 days.
        fast = rng.random(n) < 0.72
        delay = np.where(fast, rng.uniform(0.2, 12.0, n), rng.exponential(110.0, n) + 12.0)
        return CartBatch(
            shopper, time, items, quantity, value, margin, hour, views, session_seconds,
            minutes_to_abandon, minutes_since, shipping, sessions_since, views_since,
            direct_items, direct_coupon, direct_time, outcome_u, np.round(delay, 2),
        )

    def _draw_shoppers(self, n: int, time: np.ndarray) -> np.ndarray:
        """Shoppers abandon at a rate ∝ activity; coupon expectation raises it (waiting for coupons)."""
        if not self.config.coupon_conditioning:
            return self._activity_sample(n)
        chosen = np.empty(0, dtype=np.int64)
        while len(chosen) < n:
            cand = self._activity_sample(3 * n + 16)
            e = self._expectation_at(cand, self.clock)
            keep = self.rng.random(len(cand)) < (1.0 + 2.0 * e) / 3.0
            chosen = np.concatenate([chosen, cand[keep]])
        return chosen[:n]

    def _activity_sample(self, n: int) -> np.ndarray:
        """Draw shoppers with probability ∝ activity (Walker's alias method, O(1) per draw)."""
        size = len(self._alias)
        slot = self.rng.integers(0, size, n)
        return np.where(self.rng.random(n) < self._alias_prob[slot], slot, self._alias[slot])

    def _maybe_shift(self) -> None:
        if not self.shifted and self.episodes >= self.config.mixture_shift["at_episode"]:
            shift = self.config.mixture_shift
            self.population.reassign_types(shift["mixture"], shift["share"], self.rng)
            self.shifted = True

    def episodes_until_shift(self) -> int | None:
        """Carts left before the configured mixture shift, or None when there is none pending."""
        if self.shifted:
            return None
        return max(self.config.mixture_shift["at_episode"] - self.episodes, 0)

    def arrive(self, batch: CartBatch) -> None:
        """Record the carts' preceding sessions and purchases in the shoppers' histories, and snapshot
        what each cart's context record will show (carts of one batch are simultaneous)."""
        batch.type_index = self.population.type_index[batch.shopper].copy()
        has = batch.direct_items[:, :, 0] >= 0
        rows, slots = np.nonzero(has)
        if len(rows):
            items = np.full((len(rows), MAX_LINES), -1, dtype=np.int64)
            items[:, :2] = batch.direct_items[rows, slots]
            self._add_orders(batch.shopper[rows], batch.direct_time[rows, slots], items,
                             batch.direct_coupon[rows, slots], np.full(len(rows), -1))
        np.add.at(self.sessions, batch.shopper, batch.sessions_since)
        np.add.at(self.views, batch.shopper, batch.views_since)
        s = batch.shopper
        batch.history_head = np.column_stack([self.orders.head[s], self.contacts.head[s]])
        earlier = _occurrence_rank(s)
        batch.counters = np.column_stack([self.sessions[s], self.views[s], self.carts_abandoned[s] + earlier])

    def evaluate(self, batch: CartBatch, rows: np.ndarray | slice = slice(None)) -> None:
        """Ground truth for the given rows: expected profit per action, masks, observations."""
        s = batch.shopper[rows]
        t_now = batch.time[rows]
        pop = self.population
        if batch.expected_reward is None:
            n = len(batch)
            batch.expected_reward = np.empty((n, 7))
            batch.purchase_probability = np.empty((n, 7))
            batch.cost_if_bought = np.empty((n, 7))
            batch.contact_cost = np.empty((n, 7))
            batch.action_mask = np.empty((n, 7), dtype=np.int8)
            batch.observation = np.empty((n, len(OBS_NAMES)), dtype=np.float32)
        resp = cart_response(
            batch.type_index[rows], batch.value[rows], batch.margin[rows], batch.minutes_since_abandon[rows],
            pop.match[s], self._expectation_at(s, t_now), self._fatigue_at(s, t_now), self.n_orders[s],
            self.config,
        )
        batch.expected_reward[rows] = resp.expected_reward
        batch.purchase_probability[rows] = resp.purchase_probability
        batch.cost_if_bought[rows] = resp.cost_if_bought
        batch.contact_cost[rows] = resp.contact_cost
        batch.action_mask[rows] = self._mask[s]
        batch.observation[rows] = self._observe(batch, rows, s, t_now)

    def _observe(self, batch: CartBatch, rows: Any, s: np.ndarray, t_now: np.ndarray) -> np.ndarray:
        pop = self.population
        n_orders = self.n_orders[s]
        hour = batch.hour[rows] * (2 * np.pi / 24)
        recency = np.minimum((t_now - self.last_order_time[s]) / DAY, 365) / 365
        sessions, contacts, coupons = self.sessions[s], self.n_contacts[s], self.coupon_orders[s]
        columns = (
            np.log1p(batch.value[rows]), (batch.items[rows] >= 0).sum(axis=1),
            np.log1p(batch.views[rows]), np.log1p(batch.minutes_to_abandon[rows]),
            np.log1p(batch.minutes_since_abandon[rows]), batch.shipping_views[rows],
            np.sin(hour), np.cos(hour), self._static_obs[s],
            np.log1p(sessions), np.log1p(self.views[s]), np.log1p(n_orders),
            coupons / np.maximum(n_orders, 1), self.discount_sum[s] / np.maximum(coupons, 1) / 20.0, recency,
            np.log1p(contacts), (self.n_converted[s] + 0.5) / (contacts + 5.0),
            pop.channels[s], np.log1p(sessions / (n_orders + 1.0)), np.log1p(self.carts_abandoned[s]),
        )
        obs = np.empty((len(s), len(OBS_NAMES)), dtype=np.float32)
        k = 0
        for column in columns:  # write straight into float32, no float64 intermediate
            width = 1 if column.ndim == 1 else column.shape[1]
            obs[:, k:k + width] = column if width > 1 else column[:, None]
            k += width
        return np.clip(obs, OBS_LOW, OBS_HIGH, out=obs)

    def _expectation_at(self, s: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        return self.expectation[s] * np.exp(-(t - self.expectation_time[s]) / (EXPECTATION_DAYS * DAY))

    def _fatigue_at(self, s: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        return self.fatigue_load[s] * np.exp(-(t - self.fatigue_time[s]) / (FATIGUE_DAYS * DAY))

    # ------------------------------------------------------------------ outcomes
    def resolve(self, batch: CartBatch, rows: np.ndarray, actions: np.ndarray) -> dict[str, np.ndarray]:
        """Realise the outcome of ``actions`` on the given rows and update the shoppers."""
        p = batch.purchase_probability[rows, actions]
        converted = batch.outcome_u[rows] < p
        cost = batch.cost_if_bought[rows, actions]
        contact = batch.contact_cost[rows, actions]
        value = batch.value[rows]
        profit = np.where(converted, batch.margin[rows] - cost, 0.0) - contact
        coupon_cost = np.where(converted, DISCOUNT[actions] * value, 0.0)
        revenue = np.where(converted, value - coupon_cost, 0.0)
        self._update_shoppers(batch, rows, actions, converted)
        return {
            "converted": converted, "revenue": revenue, "coupon_cost": coupon_cost, "profit": profit,
            "contact_cost": contact, "purchase_delay_hours": batch.purchase_delay_hours[rows],
        }

    def resolve_one(self, batch: CartBatch, i: int, action: int) -> dict[str, Any]:
        """Scalar fast path of :meth:`resolve` for one cart (the single-cart env)."""
        converted = bool(batch.outcome_u[i] < batch.purchase_probability[i, action])
        contact = float(batch.contact_cost[i, action])
        value = float(batch.value[i])
        if converted:
            profit = float(batch.margin[i]) - float(batch.cost_if_bought[i, action]) - contact
            coupon_cost = float(DISCOUNT[action]) * value
            revenue = value - coupon_cost
        else:
            profit, coupon_cost, revenue = -contact, 0.0, 0.0
        s = int(batch.shopper[i])
        t = float(batch.time[i])
        self.carts_abandoned[s] += 1
        if action != 0:
            self.fatigue_load[s] = self.fatigue_load[s] * np.exp(-(t - self.fatigue_time[s]) / (FATIGUE_DAYS * DAY)) + 1.0
            self.fatigue_time[s] = t
            self.n_contacts[s] += 1
            self.n_converted[s] += converted
            self.contacts.append(s, time=t, action=action, converted=converted)
            self.contacts.records[-1] = {"timestamp": t, "action": ACTION_NAMES[action], "converted": converted}
        coupon = _COUPON_FOR_ACTION[action]
        if coupon:
            e = self.expectation[s] * np.exp(-(t - self.expectation_time[s]) / (EXPECTATION_DAYS * DAY))
            self.expectation[s] = e + CONDITIONING_STEP[batch.type_index[i]] * (1.0 - e)
            self.expectation_time[s] = t
        if converted:
            t_buy = t + float(batch.purchase_delay_hours[i]) * 3600.0
            paid = round(value * (1 - coupon / 100.0), 2)
            self.orders.append(s, time=t_buy, items=batch.items[i], value=paid, coupon=coupon,
                               recovered_by=action if action else -1)
            self.orders.records[-1] = {
                "timestamp": t_buy, "items": [self._item_ids[x] for x in batch.items[i].tolist() if x >= 0],
                "value": paid, "coupon_percent": coupon, "recovered_by": ACTION_NAMES[action] if action else None,
            }
            self.n_orders[s] += 1
            if coupon:
                self.coupon_orders[s] += 1
                self.discount_sum[s] += coupon
            self.last_order_time[s] = max(self.last_order_time[s], t_buy)
        return {
            "converted": converted, "revenue": revenue, "coupon_cost": coupon_cost, "profit": profit,
            "contact_cost": contact, "purchase_delay_hours": float(batch.purchase_delay_hours[i]),
        }

    def _update_shoppers(self, batch: CartBatch, rows: np.ndarray, actions: np.ndarray, converted: np.ndarray) -> None:
        """Vectorised state update; several carts of one shopper in a batch all count."""
        s = batch.shopper[rows]
        t = batch.time[rows]
        np.add.at(self.carts_abandoned, s, 1)
        sent = actions != 0
        if sent.any():
            ss, ts = s[sent], t[sent]
            t_ref = np.full(self.population.n, -np.inf)
            np.maximum.at(t_ref, ss, ts)
            touched = np.flatnonzero(t_ref > -np.inf)
            decayed = self.fatigue_load[touched] * np.exp(-(t_ref[touched] - self.fatigue_time[touched]) / (FATIGUE_DAYS * DAY))
            self.fatigue_load[touched] = decayed
            np.add.at(self.fatigue_load, ss, np.exp(-(t_ref[ss] - ts) / (FATIGUE_DAYS * DAY)))
            self.fatigue_time[touched] = t_ref[touched]
            np.add.at(self.n_contacts, ss, 1)
            np.add.at(self.n_converted, ss, converted[sent].astype(np.int64))
            self.contacts.extend(ss, time=ts, action=actions[sent], converted=converted[sent])
        coupon_pct = _COUPON_ARRAY[actions]
        got = coupon_pct > 0
        if got.any():
            sc, tc = s[got], t[got]
            step = CONDITIONING_STEP[batch.type_index[rows][got]]
            keep = np.ones(self.population.n)
            np.multiply.at(keep, sc, 1.0 - step)  # e -> 1 - (1 - e) * prod(1 - step)
            t_ref = np.full(self.population.n, -np.inf)
            np.maximum.at(t_ref, sc, tc)
            touched = np.flatnonzero(t_ref > -np.inf)
            e = self.expectation[touched] * np.exp(-(t_ref[touched] - self.expectation_time[touched]) / (EXPECTATION_DAYS * DAY))
            self.expectation[touched] = 1.0 - (1.0 - e) * keep[touched]
            self.expectation_time[touched] = t_ref[touched]
        if converted.any():
            r = rows[converted]
            a = actions[converted]
            self._add_orders(batch.shopper[r], batch.time[r] + batch.purchase_delay_hours[r] * 3600.0,
                             batch.items[r], coupon_pct[converted], np.where(a == 0, -1, a),
                             value=batch.value[r])

    # ------------------------------------------------------------------ context records
    def context(self, batch: CartBatch, i: int) -> dict[str, Any]:
        """The raw record checkout would send for cart ``i`` (see docs/context-schema.md)."""
        s = int(batch.shopper[i])
        pop = self.population
        item_ids, cats, price = self._item_ids, self._cat_of_item, self._price
        cart = []
        for item, q in zip(batch.items[i].tolist(), batch.quantity[i].tolist()):
            if item < 0:
                break
            cart.append({"item_id": item_ids[item], "category": cats[item], "price": price[item], "quantity": q})
        sessions, views, abandoned = batch.counters[i].tolist()
        t_now = float(batch.time[i])
        order_head, contact_head = batch.history_head[i].tolist()
        cap = self.config.history_cap
        ch = pop.channels[s].tolist()
        return {
            "user_id": pop.user_ids[s],
            "timestamp": t_now,
            "cart": cart,
            "session": {
                "device": DEVICES[pop.device[s]],
                "hour": int(batch.hour[i]),
                "product_views": int(batch.views[i]),
                "session_seconds": float(batch.session_seconds[i]),
                "minutes_cart_to_abandon": float(batch.minutes_to_abandon[i]),
                "minutes_since_abandon": float(batch.minutes_since_abandon[i]),
                "shipping_page_views": int(batch.shipping_views[i]),
            },
            "channels": {"email": ch[0], "sms": ch[1], "push": ch[2]},
            "history": {
                "first_seen": float(self.first_seen[s]),
                "sessions": sessions,
                "product_views": views,
                "carts_abandoned": abandoned,
                "orders": self._recent_orders.records(s, order_head, t_now, cap),
                "contacts": self._recent_contacts.records(s, contact_head, t_now, cap),
            },
        }

    def _build_order_records(self, idx: list[int]) -> None:
        """Build (once) and cache the record dicts of the given order events."""
        cols = self.orders.columns
        ids = self._item_ids
        if len(idx) <= _SCALAR_BUILD:  # a few events: element reads beat fancy indexing
            rows = [(cols["time"][j].item(), cols["items"][j].tolist(), cols["value"][j].item(),
                     cols["coupon"][j].item(), cols["recovered_by"][j].item()) for j in idx]
            times, items, values, coupons, recovered = (list(c) for c in zip(*rows))
        else:
            times = cols["time"][idx].tolist()
            items = cols["items"][idx].tolist()
            values = cols["value"][idx].tolist()
            coupons = cols["coupon"][idx].tolist()
            recovered = cols["recovered_by"][idx].tolist()
        records = self.orders.records
        for k, j in enumerate(idx):
            records[j] = {
                "timestamp": times[k], "items": [ids[x] for x in items[k] if x >= 0], "value": values[k],
                "coupon_percent": coupons[k],
                "recovered_by": ACTION_NAMES[recovered[k]] if recovered[k] >= 0 else None,
            }

    def build_new_records(self) -> None:
        """Build, in bulk, the records of every event not built yet (the single-cart env calls this
        once per block, so its contexts never build records one at a time)."""
        for store, build in ((self.orders, self._build_order_records), (self.contacts, self._build_contact_records)):
            records = store.records
            start = self._built_upto.get(id(store), 0)
            missing = [j for j in range(start, store.n) if records[j] is None]
            if missing:
                build(missing)
            self._built_upto[id(store)] = store.n

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
            records[j] = {"timestamp": times[k], "action": ACTION_NAMES[actions[k]], "converted": converted[k]}


def _alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for sampling indices with probability ∝ ``weights``."""
    n = len(weights)
    scaled = weights * (n / weights.sum())
    prob = np.ones(n)
    alias = np.arange(n)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        lo, hi = small.pop(), large.pop()
        prob[lo] = scaled[lo]
        alias[lo] = hi
        scaled[hi] -= 1.0 - scaled[lo]
        (small if scaled[hi] < 1.0 else large).append(hi)
    return prob, alias


def _occurrence_rank(values: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same value."""
    order = np.argsort(values, kind="stable")
    sorted_vals = values[order]
    start = np.empty(len(values), dtype=bool)
    start[:1] = True
    np.not_equal(sorted_vals[1:], sorted_vals[:-1], out=start[1:])
    group_start = np.maximum.accumulate(np.where(start, np.arange(len(values)), 0))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values)) - group_start
    return rank
