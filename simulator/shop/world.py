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
the batch and what is seen of it (observation, context record) in :mod:`simulator.shop.carts`,
the samplers (who abandons, what shoppers buy, their past on day one) in
:mod:`simulator.shop.sampling`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.shop.carts import MAX_DIRECT, OBS_HIGH, OBS_LOW, OBS_NAMES, CartBatch, CartView
from simulator.shop.catalog import Catalog
from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_CHANNELS, ACTION_NAMES, CHANNELS, DAY
from simulator.shop.intent import cart_intent, draw_intent_observables, intent_rng
from simulator.shop.population import Population
from simulator.shop.response import DISCOUNT, cart_response
from simulator.shop.sampling import (
    COUPON_LEVELS,
    DIRECT_COUPON_SHARE,
    HOUR_MEAN,
    MIN_TO_ABANDON,
    SESSIONS_PER_CART,
    SHIPPING_VIEWS,
    VIEWS_MEAN,
    AliasSampler,
    TastePool,
    draw_initial_history,
    occurrence_rank,
    order_value,
)
from simulator.shop.shoppers import MAX_LINES, NONE, ShopperState

__all__ = ["MAX_DIRECT", "MAX_LINES", "OBS_HIGH", "OBS_LOW", "OBS_NAMES", "CartBatch", "ShopWorld"]

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
        self._pool = TastePool(self.population, config.pool_size)
        self._activity = AliasSampler(self.population.activity)
        self._mask = _deliverable(self.population.channels)
        self._state = ShopperState(
            self.population.n, config.start_time, self.catalog.item_ids, 2 * config.history_cap
        )
        self._view = CartView(self.population, self._state, self.catalog, config.history_cap)
        # (row, action, converted) of the carts resolved one by one, applied by flush():
        self._pending: list[tuple[int, int, bool]] = []
        self._pending_batch: CartBatch | None = None
        draw_initial_history(self._state, config, self.population, self.catalog, self._pool, rng)

    @property
    def shoppers(self) -> ShopperState:
        """The shoppers' state, with every resolved cart applied."""
        self.flush()
        return self._state

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
        # Cart lines, then the items of orders completed without abandonment:
        draws = self._pool.sample(shopper, MAX_LINES + 2 * MAX_DIRECT, rng)
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

        hour = np.mod(np.round(rng.normal(HOUR_MEAN[t], 5.0)), 24).astype(np.int64)
        views = 1 + rng.poisson(VIEWS_MEAN[t] * rng.lognormal(0, 0.7, n))
        session_seconds = np.round(views * rng.uniform(25, 70, n), 1)
        minutes_to_abandon = np.round(MIN_TO_ABANDON[t] * rng.lognormal(0, 1.1, n), 2)
        minutes_since = np.round(45.0 * rng.lognormal(0, 1.0, n), 1)
        shipping = rng.poisson(SHIPPING_VIEWS[t])
        sessions_since = 1 + rng.poisson(SESSIONS_PER_CART[t] - 1)
        views_since = (
            rng.poisson(sessions_since * VIEWS_MEAN[t] * 0.7 * rng.lognormal(0, 0.5, n)) + views
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
            rng.random((n, MAX_DIRECT)) < DIRECT_COUPON_SHARE[t][:, None],
            rng.choice(COUPON_LEVELS, size=(n, MAX_DIRECT)),
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
        """Shoppers abandoning the next ``n`` carts, drawn at a rate ∝ activity.

        With coupon conditioning, coupon expectation raises the rate (shoppers wait for coupons).
        """
        if not self.config.coupon_conditioning:
            return self._activity.sample(n, self.rng)
        chosen = np.empty(0, dtype=np.int64)
        while len(chosen) < n:
            cand = self._activity.sample(3 * n + 16, self.rng)
            e = self._state.expectation_at(cand, self.clock)
            keep = self.rng.random(len(cand)) < (1.0 + 2.0 * e) / 3.0
            chosen = np.concatenate([chosen, cand[keep]])
        return chosen[:n]

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
        """Record the carts' preceding sessions and purchases in the shoppers' histories.

        Also snapshots what each cart's context record will show (carts of one batch are
        simultaneous).
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
                order_value(self.catalog, items),
                batch.direct_coupon[rows, slots],
                np.full(len(rows), -1),
            )
        np.add.at(st.sessions, batch.shopper, batch.sessions_since)
        np.add.at(st.views, batch.shopper, batch.views_since)
        s = batch.shopper
        batch.history_head = np.column_stack([st.orders.head[s], st.contacts.head[s]])
        earlier = occurrence_rank(s)
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
        """Build, in bulk, the history records of every event not built yet.

        The single-cart env calls this once per block, so its contexts seldom build records one at
        a time.
        """
        self._state.build_new_records()

    def opt_out(self, shopper: np.ndarray, channel: np.ndarray) -> None:
        """Shoppers unsubscribe from a channel: later carts can no longer be reached through it."""
        if len(shopper) == 0:
            return
        self.population.channels[shopper, channel] = False
        self._mask[shopper] = _deliverable(self.population.channels[shopper])

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
        """Scalar fast path of :meth:`resolve` for one cart (the single-cart env).

        An undeliverable action is resolved as ``none``, as there.
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
        """Apply the shopper updates of the carts resolved by :meth:`resolve_one`, in one call."""
        if not self._pending:
            return
        batch = self._pending_batch
        rows, actions, converted = (np.array(column) for column in zip(*self._pending, strict=True))
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


def _deliverable(channels: np.ndarray) -> np.ndarray:
    """Action mask (int8) of shoppers with these channel opt-ins; ``none`` is always possible."""
    mask = (channels.astype(np.int64) @ _ACTION_MASK_MATRIX.astype(np.int64)) > 0
    mask[:, NONE] = True
    return mask.astype(np.int8)
