"""A persistent population of shoppers: hidden type, tastes, device, channel opt-ins, habits.

Static traits are drawn once per world; the dynamic part (history, fatigue, coupon expectation)
lives in :class:`simulator.state.ShopperState`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.shop.catalog import Catalog
from simulator.shop.constants import DEVICES, SHOPPER_TYPES

# Device shares by type (mobile, desktop, tablet): impulsive shoppers are mostly on phones,
# hesitant ones research on desktops.
_DEVICE_P = np.array(
    [
        [0.35, 0.55, 0.10],  # hesitant
        [0.50, 0.40, 0.10],  # price_sensitive
        [0.75, 0.15, 0.10],  # impulsive
        [0.50, 0.35, 0.15],  # forgetful
    ]
)
# How strongly each type avoids expensive items when filling a cart (log-price coefficient).
_PRICE_AVERSION = np.array([0.3, 1.2, 0.1, 0.3])


@dataclass
class Population:
    """Shopper traits, indexed by shopper index. ``type_index`` may change under a mixture shift."""

    user_ids: tuple[str, ...]
    type_index: np.ndarray  # (n,) int into SHOPPER_TYPES
    taste: np.ndarray  # (n, k)
    focus: np.ndarray  # (n,) how concentrated tastes are (drives recommendation fit)
    activity: np.ndarray  # (n,) relative rate of abandoning carts
    device: np.ndarray  # (n,) int into DEVICES
    channels: np.ndarray  # (n, 3) bool: email, sms, push
    pool_items: np.ndarray  # (n, pool) item indices a shopper buys from, best first
    pool_logp: np.ndarray  # (n, pool) log-probabilities over the pool
    match: np.ndarray  # (n,) in (0, 1): how well a taste-based recommendation fits this shopper

    @property
    def n(self) -> int:
        """Number of shoppers."""
        return len(self.user_ids)

    @classmethod
    def generate(
        cls,
        n: int,
        mixture: dict[str, float],
        catalog: Catalog,
        pool_size: int,
        rng: np.random.Generator,
    ) -> Population:
        """Draw ``n`` shoppers: types from ``mixture``, tastes, devices, opt-ins and taste pools."""
        shares = np.array([mixture[t] for t in SHOPPER_TYPES])
        type_index = rng.choice(len(SHOPPER_TYPES), size=n, p=shares)
        k = catalog.factors.shape[1]
        taste = rng.normal(0.0, 1.0, size=(n, k))
        focus = rng.uniform(0.3, 3.0, size=n)
        activity = rng.gamma(2.0, 0.5, size=n)
        u = rng.random(n)
        device = (u[:, None] > np.cumsum(_DEVICE_P[type_index], axis=1)).sum(axis=1)
        device = np.minimum(device, len(DEVICES) - 1)
        mobile = device == 0
        email = rng.random(n) < 0.85
        sms = rng.random(n) < np.where(type_index == 2, 0.5, 0.35)
        push = rng.random(n) < np.where(mobile, 0.55, 0.25)
        channels = np.stack([email, sms, push], axis=1)
        pool_items, pool_logp = _taste_pools(taste, focus, type_index, catalog, pool_size)
        match = 1.0 - np.exp(-focus / 1.2)
        user_ids = tuple(f"u{j:06d}" for j in range(n))
        return cls(
            user_ids,
            type_index,
            taste,
            focus,
            activity,
            device,
            channels,
            pool_items,
            pool_logp,
            match,
        )

    def reassign_types(
        self, mixture: dict[str, float], share: float, rng: np.random.Generator
    ) -> None:
        """Non-stationarity: a share of shoppers draw a new type from ``mixture``."""
        shares = np.array([mixture[t] for t in SHOPPER_TYPES])
        chosen = np.flatnonzero(rng.random(self.n) < share)
        self.type_index[chosen] = rng.choice(len(SHOPPER_TYPES), size=len(chosen), p=shares)


def _taste_pools(
    taste: np.ndarray, focus: np.ndarray, type_index: np.ndarray, catalog: Catalog, pool_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each shopper's favourite items and a softmax over them (sharper for focused shoppers)."""
    k = taste.shape[1]
    n = taste.shape[0]
    pool_items = np.empty((n, pool_size), dtype=np.int64)
    pool_logp = np.empty((n, pool_size))
    log_price = np.log(catalog.price)
    for start in range(0, n, 2048):  # chunks keep the (chunk, n_items) score matrix small
        sl = slice(start, min(n, start + 2048))
        scores = taste[sl] @ catalog.factors.T / np.sqrt(k) + catalog.popularity
        scores -= _PRICE_AVERSION[type_index[sl]][:, None] * (log_price - log_price.mean())
        top = np.argpartition(-scores, pool_size - 1, axis=1)[:, :pool_size]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1)
        pool_items[sl] = np.take_along_axis(top, order, axis=1)
        logits = np.take_along_axis(top_scores, order, axis=1) * focus[sl][:, None]
        logits -= logits.max(axis=1, keepdims=True)
        pool_logp[sl] = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return pool_items, pool_logp
