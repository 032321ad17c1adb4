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
fatigue, coupon expectation, orders) through :meth:`ShopperState.record_outcomes`. Carts within one
batch are simultaneous: they see the state from before the batch (the single-cart env re-evaluates
a cart whose shopper changed since). The shopper state lives in :mod:`simulator.shop.shoppers`,
the batch and what is seen of it (observation, context record) in :mod:`simulator.shop.carts`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.shop.carts import MAX_DIRECT, OBS_HIGH, OBS_LOW, OBS_NAMES, CartBatch, CartView
from simulator.shop.catalog import Catalog
from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_CHANNELS, ACTION_NAMES, CHANNELS, COUPON_PERCENT, DAY
from simulator.shop.intent import cart_intent, draw_intent_observables, intent_rng
from simulator.shop.population import Population
from simulator.shop.response import DISCOUNT, cart_response
from simulator.shop.shoppers import MAX_LINES, NONE, ShopperState

__all__ = ["MAX_DIRECT", "MAX_LINES", "OBS_HIGH", "OBS_LOW", "OBS_NAMES", "CartBatch", "ShopWorld"]

# Session habits by type (hesitant, price_sensitive, impulsive, forgetful): noisy evidence of type.
_VIEWS_MEAN = np.array([10.0, 7.0, 4.5, 6.0])
_MIN_TO_ABANDON = np.array([14.0, 9.0, 4.0, 8.0])  # median minutes from add-to-cart to abandonment
_SHIPPING_VIEWS = np.array([0.7, 1.2, 0.4, 0.5])
_HOUR_MEAN = np.array([19.0, 19.0, 21.5, 15.0])
_SESSIONS_PER_CART = np.array([2.8, 2.4, 1.8, 2.1])
_DIRECT_COUPON_SHARE = np.array([0.10, 0.25, 0.07, 0.07])
_COUPON_LEVELS = np.array(sorted(set(COUPON_PERCENT.values())))  # coupons seen on direct orders too
_ACTION_MASK_MATRIX = np.array(
    [[a == "none" or c in ACTION_CHANNELS[a] for a in ACTION_NAMES] for c in CHANNELS]
)  # (channels, actions): which actions each channel can deliver


class ShopWorld:
    """Catalogue + population + state + clock, driven by one ``np.random.Generator``."""

    def __init__(self, config: SimConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self._intent_rng = intent_rng(rng)
        catalog_rng = (
            np.random.default_rng(config.seed_catalog) if config.seed_catalog is not None else rng
        )
        self.catalog = Catalog.generate(
            config.n_items, config.n_categories, config.n_factors, catalog_rng
        )
        self.population = Population.generate(
            config.n_shoppers, dict(config.type_mixture), self.catalog, config.pool_size, rng
        )
        self.clock = float(config.start_time)
        self.episodes = 0
        self.shifted = config.mixture_shift is None
        pool_cdf = np.cumsum(np.exp(self.population.pool_logp), axis=1)
        self._pool_cdf = pool_cdf / pool_cdf[:, -1:]
        self._alias_prob, self._alias = _alias_table(self.population.activity)
        self._mask = (
            (self.population.channels.astype(np.int64) @ _ACTION_MASK_MATRIX.astype(np.int64)) > 0
        ).astype(np.int8)
        self._mask[:, NONE] = 1  # doing nothing is always possible
        self._state = ShopperState(
            self.population.n, config.start_time, self.catalog.item_ids, 2 * config.history_cap
        )
        self._view = CartView(self.population, self._state, self.catalog, config.history_cap)
        self._pending: list[
            tuple[int, int, bool]
        ] = []  # (row, action, converted) resolved one by one
        self._pending_batch: CartBatch | None = None
        self._init_state()

    @property
    def shoppers(self) -> ShopperState:
        """The shoppers' state, with every resolved cart applied."""
        self.flush()
        return self._state

    # ------------------------------------------------------------------ state
    def _init_state(self) -> None:
        """The shoppers' past activity and purchases on the day Cartwise is switched on."""
        cfg, pop, rng, st = self.config, self.population, self.rng, self._state
        n = pop.n
        t0 = cfg.start_time
        rel_activity = pop.activity / pop.activity.mean()
        n_orders = rng.poisson(cfg.initial_orders_mean * rel_activity)
        st.sessions = (n_orders * _SESSIONS_PER_CART[pop.type_index] * 1.5).astype(
            np.int64
        ) + rng.poisson(2, n)
        st.views = rng.poisson(st.sessions * _VIEWS_MEAN[pop.type_index] * 0.7).astype(np.int64)
        st.carts_abandoned = rng.poisson(n_orders / cfg.completed_per_abandoned * 0.5).astype(
            np.int64
        )
        first_seen = t0 - rng.uniform(30, 720, n) * DAY
        owner = np.repeat(np.arange(n), n_orders)
        times = t0 - rng.uniform(1, 180, len(owner)) * DAY
        order = np.lexsort((times, owner))
        owner, times = owner[order], times[order]
        first_order = np.full(n, np.inf)
        np.minimum.at(first_order, owner, times)
        st.first_seen = np.minimum(first_seen, first_order - DAY)
        items = self._pool_items(owner, two_share=0.4)
        coupon = np.where(
            rng.random(len(owner)) < _DIRECT_COUPON_SHARE[pop.type_index[owner]],
            rng.choice(_COUPON_LEVELS, size=len(owner)),
            0,
        )
        st.add_orders(
            owner, times, items, self._order_value(items), coupon, np.full(len(owner), -1)
        )

    def _order_value(self, items: np.ndarray) -> np.ndarray:
        """Catalogue value of orders of one unit per line."""
        safe = np.maximum(items, 0)
        return np.where(items >= 0, self.catalog.price[safe], 0.0).sum(axis=1)

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

    # ------------------------------------------------------------------ batches
    def draw_batch(self, n: int) -> CartBatch:
        """Draw ``n`` abandoned carts in time order (state-independent parts only)."""
        self.flush()
        cfg, pop, rng, cat = self.config, self.population, self.rng, self.catalog
        self._maybe_shift()
        gaps = rng.exponential(DAY / cfg.carts_per_day, n)
        time = self.clock + np.cumsum(gaps)
        self.clock = float(time[-1])
        self.episodes += n
        shopper = self._draw_shoppers(n, time)
        t = pop.type_index[shopper]

        n_lines = 1 + rng.binomial(MAX_LINES - 1, 0.3, n)
        draws = self._sample_pool(
            shopper, MAX_LINES + 2 * MAX_DIRECT
        )  # cart lines, then direct orders
        items = draws[:, :MAX_LINES].copy()
        duplicate = np.zeros((n, MAX_LINES), dtype=bool)
        for j in range(1, MAX_LINES):
            duplicate[:, j] = (items[:, :j] == items[:, j : j + 1]).any(axis=1)
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
        views_since = (
            rng.poisson(sessions_since * _VIEWS_MEAN[t] * 0.7 * rng.lognormal(0, 0.5, n)) + views
        )

        # Purchases completed without abandonment since this shopper's previous abandoned cart:
        # 30.2% of carts are bought in-session (Baymard's 69.8% abandonment).
        n_direct = np.minimum(rng.poisson(cfg.completed_per_abandoned, n), MAX_DIRECT)
        direct_items = draws[:, MAX_LINES:].reshape(n, MAX_DIRECT, 2)
        direct_items[:, :, 1][
            (rng.random((n, MAX_DIRECT)) < 0.6) | (direct_items[:, :, 1] == direct_items[:, :, 0])
        ] = -1
        direct_items[np.arange(MAX_DIRECT)[None, :] >= n_direct[:, None]] = -1
        direct_coupon = np.where(
            rng.random((n, MAX_DIRECT)) < _DIRECT_COUPON_SHARE[t][:, None],
            rng.choice(_COUPON_LEVELS, size=(n, MAX_DIRECT)),
            0,
        )
        direct_time = time[:, None] - rng.uniform(1, 20, (n, MAX_DIRECT)) * DAY
        outcome_u = rng.random(n)
        # SeeWhy: ~72% of recovered purchases within 12 h, ~80% within 3 days.
        fast = rng.random(n) < 0.72
        delay = np.where(fast, rng.uniform(0.2, 12.0, n), rng.exponential(110.0, n) + 12.0)
        return CartBatch(
            shopper,
            time,
            items,
            quantity,
            value,
            margin,
            hour,
            views,
            session_seconds,
            minutes_to_abandon,
            minutes_since,
            shipping,
            sessions_since,
            views_since,
            direct_items,
            direct_coupon,
            direct_time,
            outcome_u,
            np.round(delay, 2),
            *draw_intent_observables(self._intent_rng, t, sessions_since),
        )

    def _draw_shoppers(self, n: int, time: np.ndarray) -> np.ndarray:
        """Shoppers abandon at a rate ∝ activity; coupon expectation raises it (waiting for coupons)."""
        if not self.config.coupon_conditioning:
            return self._activity_sample(n)
        chosen = np.empty(0, dtype=np.int64)
        while len(chosen) < n:
            cand = self._activity_sample(3 * n + 16)
            e = self._state.expectation_at(cand, self.clock)
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
        what each cart's context record will show (carts of one batch are simultaneous).
        """
        self.flush()
        st = self._state
        batch.type_index = self.population.type_index[batch.shopper].copy()
        has = batch.direct_items[:, :, 0] >= 0
        rows, slots = np.nonzero(has)
        if len(rows):
            items = np.full((len(rows), MAX_LINES), -1, dtype=np.int64)
            items[:, :2] = batch.direct_items[rows, slots]
            st.add_orders(
                batch.shopper[rows],
                batch.direct_time[rows, slots],
                items,
                self._order_value(items),
                batch.direct_coupon[rows, slots],
                np.full(len(rows), -1),
            )
        np.add.at(st.sessions, batch.shopper, batch.sessions_since)
        np.add.at(st.views, batch.shopper, batch.views_since)
        s = batch.shopper
        batch.history_head = np.column_stack([st.orders.head[s], st.contacts.head[s]])
        earlier = _occurrence_rank(s)
        batch.counters = np.column_stack(
            [st.sessions[s], st.views[s], st.carts_abandoned[s] + earlier]
        )

    def evaluate(self, batch: CartBatch, rows: np.ndarray | slice = slice(None)) -> None:
        """Ground truth for the given rows: expected profit per action, masks, observations."""
        self.flush()
        st = self._state
        s = batch.shopper[rows]
        t_now = batch.time[rows]
        mask = self._mask[s]
        if batch.expected_reward is None:
            shape = (len(batch), len(ACTION_NAMES))
            batch.expected_reward = np.empty(shape)
            batch.purchase_probability = np.empty(shape)
            batch.cost_if_bought = np.empty(shape)
            batch.contact_cost = np.empty(shape)
            batch.action_mask = np.empty(shape, dtype=np.int8)
            batch.observation = np.empty((len(batch), len(OBS_NAMES)), dtype=np.float32)
            batch.intent = np.empty(len(batch))
        intent = cart_intent(batch, rows, st, self.population.device[s])
        batch.intent[rows] = intent
        resp = cart_response(
            batch.type_index[rows],
            batch.value[rows],
            batch.margin[rows],
            batch.minutes_since_abandon[rows],
            self.population.match[s],
            st.expectation_at(s, t_now),
            st.fatigue_at(s, t_now),
            st.n_orders[s],
            self.config,
            deliverable=mask,
            intent=intent,
        )
        batch.expected_reward[rows] = resp.expected_reward
        batch.purchase_probability[rows] = resp.purchase_probability
        batch.cost_if_bought[rows] = resp.cost_if_bought
        batch.contact_cost[rows] = resp.contact_cost
        batch.action_mask[rows] = mask
        batch.observation[rows] = self._view.observe(batch, rows, s, t_now)

    def context(self, batch: CartBatch, i: int) -> dict[str, Any]:
        """The raw record checkout would send for cart ``i`` (see :meth:`CartView.context`)."""
        return self._view.context(batch, i)

    def build_new_records(self) -> None:
        """Build, in bulk, the history records of every event not built yet (the single-cart env
        calls this once per block, so its contexts seldom build records one at a time).
        """
        self._state.build_new_records()

    def opt_out(self, shopper: np.ndarray, channel: np.ndarray) -> None:
        """Shoppers unsubscribe from a channel: later carts can no longer be reached through it."""
        if len(shopper) == 0:
            return
        self.population.channels[shopper, channel] = False
        chans = self.population.channels[shopper].astype(np.int64)
        self._mask[shopper] = ((chans @ _ACTION_MASK_MATRIX.astype(np.int64)) > 0).astype(np.int8)
        self._mask[shopper, NONE] = 1

    # ------------------------------------------------------------------ outcomes
    def resolve(
        self, batch: CartBatch, rows: np.ndarray, actions: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Realise the outcome of ``actions`` on the given rows and update the shoppers.

        An action the shopper cannot receive (``action_mask`` 0) is not delivered and has the
        outcome of ``none``; ``delivered`` says which were.
        """
        self.flush()
        delivered = batch.action_mask[rows, actions] > 0
        actions = np.where(delivered, actions, NONE)
        p = batch.purchase_probability[rows, actions]
        converted = batch.outcome_u[rows] < p
        cost = batch.cost_if_bought[rows, actions]
        contact = batch.contact_cost[rows, actions]
        value = batch.value[rows]
        profit = np.where(converted, batch.margin[rows] - cost, 0.0) - contact
        coupon_cost = np.where(converted, DISCOUNT[actions] * value, 0.0)
        revenue = np.where(converted, value - coupon_cost, 0.0)
        self._state.record_outcomes(
            batch.shopper[rows],
            batch.time[rows],
            batch.type_index[rows],
            actions,
            converted,
            batch.items[rows],
            value,
            batch.purchase_delay_hours[rows],
        )
        return {
            "converted": converted,
            "revenue": revenue,
            "coupon_cost": coupon_cost,
            "profit": profit,
            "contact_cost": contact,
            "purchase_delay_hours": batch.purchase_delay_hours[rows],
            "delivered": delivered,
        }

    def resolve_one(self, batch: CartBatch, i: int, action: int) -> dict[str, Any]:
        """Scalar fast path of :meth:`resolve` for one cart (the single-cart env); an undeliverable
        action is resolved as ``none``, as there.

        The outcome is computed at once; the shopper update is queued and applied, together with
        the carts resolved after it, by :meth:`flush`, which every reader of the shopper state
        calls first. Between two carts of one shopper that shopper must be re-evaluated (the
        single env does), so the queued carts belong to distinct shoppers and applying them
        together equals applying them one by one.
        """
        if batch is not self._pending_batch:
            self.flush()
            self._pending_batch = batch
        delivered = bool(batch.action_mask[i, action])
        if not delivered:
            action = NONE
        converted = bool(batch.outcome_u[i] < batch.purchase_probability[i, action])
        contact = float(batch.contact_cost[i, action])
        value = float(batch.value[i])
        if converted:
            profit = float(batch.margin[i]) - float(batch.cost_if_bought[i, action]) - contact
            coupon_cost = float(DISCOUNT[action]) * value
            revenue = value - coupon_cost
        else:
            profit, coupon_cost, revenue = -contact, 0.0, 0.0
        self._pending.append((i, action, converted))
        return {
            "converted": converted,
            "revenue": revenue,
            "coupon_cost": coupon_cost,
            "profit": profit,
            "contact_cost": contact,
            "purchase_delay_hours": float(batch.purchase_delay_hours[i]),
            "delivered": delivered,
        }

    def flush(self) -> None:
        """Apply the shopper updates of carts resolved by :meth:`resolve_one` (one vectorised call)."""
        if not self._pending:
            return
        batch = self._pending_batch
        rows, actions, converted = (np.array(column) for column in zip(*self._pending))
        self._pending.clear()
        self._state.record_outcomes(
            batch.shopper[rows],
            batch.time[rows],
            batch.type_index[rows],
            actions.astype(np.int64),
            converted.astype(bool),
            batch.items[rows],
            batch.value[rows],
            batch.purchase_delay_hours[rows],
        )


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
