"""The shop's samplers: who abandons a cart, what shoppers buy, and their past on day one.

:class:`ShopWorld` draws with these, all from its one ``np.random.Generator``: shoppers with
probability proportional to their activity (:class:`AliasSampler`), the items of carts and orders
from each shopper's taste pool (:class:`TastePool`), and the purchases and sessions shoppers made
before Cartwise was switched on (:func:`draw_initial_history`). The session habits per shopper type
are the noisy evidence of type that both the batches and the initial history draw from.
"""

from __future__ import annotations

import numpy as np

from simulator.shop.catalog import Catalog
from simulator.shop.config import SimConfig
from simulator.shop.constants import COUPON_PERCENT, DAY
from simulator.shop.population import Population
from simulator.shop.shoppers import MAX_LINES, ShopperState

# Session habits by type (hesitant, price_sensitive, impulsive, forgetful): noisy evidence of type.
VIEWS_MEAN = np.array([10.0, 7.0, 4.5, 6.0])
"""Mean product views per session."""
MIN_TO_ABANDON = np.array([14.0, 9.0, 4.0, 8.0])
"""Median minutes from add-to-cart to abandonment."""
SHIPPING_VIEWS = np.array([0.7, 1.2, 0.4, 0.5])
"""Mean views of the shipping page per session."""
HOUR_MEAN = np.array([19.0, 19.0, 21.5, 15.0])
"""Mean hour of day of the abandonment."""
SESSIONS_PER_CART = np.array([2.8, 2.4, 1.8, 2.1])
"""Mean sessions per abandoned cart."""
DIRECT_COUPON_SHARE = np.array([0.10, 0.25, 0.07, 0.07])
"""Share of orders completed without abandonment that use a coupon."""
COUPON_LEVELS = np.array(sorted(set(COUPON_PERCENT.values())))
"""Coupon percents seen on orders completed without abandonment too."""


class AliasSampler:
    """Draws indices with probability proportional to ``weights`` (Walker's alias method).

    The Walker/Vose table is built once in O(n); each draw then costs O(1).

    Args:
        weights: non-negative weights, not all zero.

    Example:
        >>> sampler = AliasSampler(np.array([0.0, 1.0, 3.0]))
        >>> draws = sampler.sample(10_000, np.random.default_rng(0))
        >>> bool((draws != 0).all()), round(float((draws == 2).mean()), 2)
        (True, 0.75)
    """

    def __init__(self, weights: np.ndarray) -> None:
        n = len(weights)
        scaled = weights * (n / weights.sum())
        self._prob = np.ones(n)
        self._alias = np.arange(n)
        small = [i for i in range(n) if scaled[i] < 1.0]
        large = [i for i in range(n) if scaled[i] >= 1.0]
        while small and large:
            lo, hi = small.pop(), large.pop()
            self._prob[lo] = scaled[lo]
            self._alias[lo] = hi
            scaled[hi] -= 1.0 - scaled[lo]
            (small if scaled[hi] < 1.0 else large).append(hi)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws (indices into ``weights``)."""
        slot = rng.integers(0, len(self._alias), n)
        return np.where(rng.random(n) < self._prob[slot], slot, self._alias[slot])


class TastePool:
    """Draws items from each shopper's taste pool (``population.pool_items``, ``pool_logp``).

    Args:
        population: the shoppers; their pools are read at each draw.
        pool_size: items per pool.
    """

    def __init__(self, population: Population, pool_size: int) -> None:
        self._population = population
        self._pool_size = pool_size
        cdf = np.cumsum(np.exp(population.pool_logp), axis=1)
        self._cdf = cdf / cdf[:, -1:]

    def sample(self, shopper: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` independent draws per row from each shopper's pool, shape ``(len(shopper), k)``."""
        u = rng.random((len(shopper), k, 1))
        rank = (self._cdf[shopper][:, None, :] < u).sum(axis=2)
        rank = np.minimum(rank, self._pool_size - 1)
        return np.take_along_axis(self._population.pool_items[shopper], rank, axis=1)

    def order_items(
        self, shopper: np.ndarray, two_share: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Items of completed orders: one line, or two with probability ``two_share``.

        Returns ``(len(shopper), MAX_LINES)`` item indices, -1 where there is no line.
        """
        pop = self._population
        keys = pop.pool_logp[shopper] + rng.gumbel(size=(len(shopper), self._pool_size))
        top = np.argpartition(-keys, 1, axis=1)[:, :2]
        items = np.full((len(shopper), MAX_LINES), -1, dtype=np.int64)
        items[:, :2] = np.take_along_axis(pop.pool_items[shopper], top, axis=1)
        items[rng.random(len(shopper)) >= two_share, 1] = -1
        return items


def order_value(catalog: Catalog, items: np.ndarray) -> np.ndarray:
    """Catalogue value of orders of one unit per line (``items`` -1 where there is no line)."""
    safe = np.maximum(items, 0)
    return np.where(items >= 0, catalog.price[safe], 0.0).sum(axis=1)


def draw_initial_history(
    state: ShopperState,
    config: SimConfig,
    population: Population,
    catalog: Catalog,
    pool: TastePool,
    rng: np.random.Generator,
) -> None:
    """Fill ``state`` with the shoppers' past activity and purchases on the day Cartwise starts."""
    n = population.n
    t0 = config.start_time
    type_index = population.type_index
    rel_activity = population.activity / population.activity.mean()
    n_orders = rng.poisson(config.initial_orders_mean * rel_activity)
    sessions = (n_orders * SESSIONS_PER_CART[type_index] * 1.5).astype(np.int64)
    state.sessions = sessions + rng.poisson(2, n)
    state.views = rng.poisson(state.sessions * VIEWS_MEAN[type_index] * 0.7).astype(np.int64)
    abandoned = rng.poisson(n_orders / config.completed_per_abandoned * 0.5)
    state.carts_abandoned = abandoned.astype(np.int64)
    first_seen = t0 - rng.uniform(30, 720, n) * DAY
    owner = np.repeat(np.arange(n), n_orders)
    times = t0 - rng.uniform(1, 180, len(owner)) * DAY
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    first_order = np.full(n, np.inf)
    np.minimum.at(first_order, owner, times)
    state.first_seen = np.minimum(first_seen, first_order - DAY)
    items = pool.order_items(owner, 0.4, rng)
    coupon = np.where(
        rng.random(len(owner)) < DIRECT_COUPON_SHARE[type_index[owner]],
        rng.choice(COUPON_LEVELS, size=len(owner)),
        0,
    )
    no_action = np.full(len(owner), -1)
    state.add_orders(owner, times, items, order_value(catalog, items), coupon, no_action)


def occurrence_rank(values: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same value.

    Example:
        >>> occurrence_rank(np.array([7, 3, 7, 7, 3])).tolist()
        [0, 0, 1, 2, 1]
    """
    order = np.argsort(values, kind="stable")
    sorted_vals = values[order]
    start = np.empty(len(values), dtype=bool)
    start[:1] = True
    np.not_equal(sorted_vals[1:], sorted_vals[:-1], out=start[1:])
    group_start = np.maximum.accumulate(np.where(start, np.arange(len(values)), 0))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values)) - group_start
    return rank
