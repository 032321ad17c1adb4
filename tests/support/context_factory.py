"""Synthetic context records for the engine tests (schema: docs/context-schema.md).

Purchases come from a latent factor model so that collaborative filtering has real structure:
items belong to categories whose centroids live in a k-dim taste space, each item is its
category centroid plus noise, each user's taste is a mix of one or two favourite categories, and
a user buys item i with probability proportional to ``exp(sharpness * <user, item> + bias_i)``.

Test files load this module by path (they are not a package)::

    _spec = importlib.util.spec_from_file_location("cartwise_context_factory", PATH)
"""

from __future__ import annotations

import copy
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES, DAY

DEVICES = ("mobile", "desktop", "tablet")
ACTIONS = ACTION_NAMES[1:]  # every recovery action (all but "none")
NOW = 1_767_225_600.0


@dataclass
class World:
    """Ground truth of the synthetic shop."""

    item_ids: list[str]
    categories: list[str]
    item_category: np.ndarray  # (n_items,) category index
    item_price: np.ndarray  # (n_items,)
    item_vecs: np.ndarray  # (n_items, k)
    item_bias: np.ndarray  # (n_items,) log-popularity
    user_ids: list[str]
    user_vecs: np.ndarray  # (n_users, k)
    sharpness: float

    def purchase_probs(self, user: int) -> np.ndarray:
        logits = self.sharpness * (self.item_vecs @ self.user_vecs[user]) + self.item_bias
        logits -= logits.max()
        p = np.exp(logits)
        return p / p.sum()


def make_world(
    seed: int = 0,
    n_users: int = 800,
    n_items: int = 300,
    n_categories: int = 15,
    k: int = 8,
    sharpness: float = 4.0,
) -> World:
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(n_categories, k))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    item_category = rng.integers(0, n_categories, size=n_items)
    item_vecs = centroids[item_category] + 0.35 * rng.normal(size=(n_items, k))
    item_bias = rng.normal(0.0, 0.5, size=n_items)
    item_price = np.round(np.exp(rng.normal(3.3, 0.6, size=n_items)), 2)
    user_vecs = np.empty((n_users, k))
    for u in range(n_users):
        favourites = rng.choice(n_categories, size=rng.integers(1, 3), replace=False)
        user_vecs[u] = centroids[favourites].mean(axis=0) + 0.2 * rng.normal(size=k)
    return World(
        item_ids=[f"i{j:04d}" for j in range(n_items)],
        categories=[f"cat{g:02d}" for g in range(n_categories)],
        item_category=item_category,
        item_price=item_price,
        item_vecs=item_vecs,
        item_bias=item_bias,
        user_ids=[f"u{u:06d}" for u in range(n_users)],
        user_vecs=user_vecs,
        sharpness=sharpness,
    )


def _cart_line(world: World, j: int, rng: np.random.Generator) -> dict[str, Any]:
    return {
        "item_id": world.item_ids[j],
        "category": world.categories[int(world.item_category[j])],
        "price": float(world.item_price[j]),
        "quantity": int(rng.integers(1, 3)),
    }


def make_context(
    world: World,
    rng: np.random.Generator,
    user: int,
    n_orders: int | None = None,
    n_contacts: int | None = None,
    now: float = NOW,
) -> dict[str, Any]:
    """One context for ``user`` with a history drawn from the latent factor model."""
    probs = world.purchase_probs(user)
    n_items = len(world.item_ids)
    if n_orders is None:
        n_orders = int(2 + rng.poisson(4))
    if n_contacts is None:
        n_contacts = int(rng.poisson(2))
    order_times = np.sort(now - rng.uniform(1.0, 365.0, size=n_orders) * DAY)
    orders = []
    for ts in order_times:
        size = int(1 + rng.poisson(0.8))
        items = rng.choice(n_items, size=min(size, n_items), replace=False, p=probs)
        coupon = int(rng.choice([0, 5, 10, 20], p=[0.7, 0.1, 0.1, 0.1]))
        orders.append(
            {
                "timestamp": float(ts),
                "items": [world.item_ids[j] for j in items],
                "value": float(world.item_price[items].sum()),
                "coupon_percent": coupon if coupon else None,
                "recovered_by": (f"coupon_{coupon}" if coupon and rng.random() < 0.5 else None),
            }
        )
    contact_times = np.sort(now - rng.uniform(1.0, 200.0, size=n_contacts) * DAY)
    contacts = [
        {
            "timestamp": float(ts),
            "action": str(rng.choice(ACTIONS)),
            "converted": bool(rng.random() < 0.15),
        }
        for ts in contact_times
    ]
    cart_items = rng.choice(n_items, size=int(rng.integers(1, 4)), replace=False, p=probs)
    sessions = int(n_orders * 3 + rng.poisson(5))
    return {
        "user_id": world.user_ids[user],
        "timestamp": float(now),
        "cart": [_cart_line(world, int(j), rng) for j in cart_items],
        "session": {
            "device": str(rng.choice(DEVICES)),
            "hour": int(rng.integers(0, 24)),
            "product_views": int(rng.poisson(6)),
            "session_seconds": float(rng.exponential(400.0)),
            "minutes_cart_to_abandon": float(rng.exponential(5.0)),
            "minutes_since_abandon": float(rng.uniform(10.0, 120.0)),
            "shipping_page_views": int(rng.poisson(0.7)),
        },
        "channels": {
            "email": bool(rng.random() < 0.8),
            "sms": bool(rng.random() < 0.4),
            "push": bool(rng.random() < 0.5),
        },
        "history": {
            "first_seen": float(now - 400.0 * DAY),
            "sessions": sessions,
            "product_views": int(sessions * 5 + rng.poisson(10)),
            "carts_abandoned": int(rng.poisson(2)),
            "orders": orders,
            "contacts": contacts,
        },
    }


def make_contexts(world: World, seed: int, n: int | None = None) -> list[dict[str, Any]]:
    """One context per user (``n`` first users, all by default)."""
    rng = np.random.default_rng(seed)
    users = range(len(world.user_ids) if n is None else n)
    return [make_context(world, rng, u) for u in users]


def as_read_only(value: Any) -> Any:
    """A copy of a context record as read-only mappings and tuples: other Mapping and Sequence
    types than the dicts and lists that validation's fast paths take, so every part of it is
    checked field by field."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: as_read_only(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(as_read_only(v) for v in value)
    return value


def minimal_context(item_id: str = "i0000", user_id: str = "u_new") -> dict[str, Any]:
    """Only the required fields."""
    return {
        "user_id": user_id,
        "timestamp": NOW,
        "cart": [{"item_id": item_id, "price": 10.0, "quantity": 1}],
    }


def edge_contexts(world: World) -> dict[str, dict[str, Any]]:
    """Named corner cases that every consumer must handle."""
    rng = np.random.default_rng(123)
    base = make_context(world, rng, 0)
    cases: dict[str, dict[str, Any]] = {"typical": base, "minimal": minimal_context()}
    empty = copy.deepcopy(base)
    empty["history"] = {"orders": [], "contacts": []}
    cases["empty_history"] = empty
    none_sections = copy.deepcopy(base)
    none_sections["session"] = None
    none_sections["history"] = None
    none_sections["channels"] = None
    cases["none_sections"] = none_sections
    cold = copy.deepcopy(base)
    cold["user_id"] = "u_never_seen"
    for order in cold["history"]["orders"]:
        order["items"] = ["unknown_" + item for item in order["items"]]
    cases["cold_user"] = cold
    unknown = copy.deepcopy(base)
    unknown["cart"] = [{"item_id": "zz_new", "price": 5.0, "quantity": 3}]
    cases["unknown_items"] = unknown
    mixed = copy.deepcopy(base)
    mixed["cart"].append({"item_id": "zz_other", "price": 0.0, "quantity": 1})
    cases["mixed_known_unknown"] = mixed
    odd = copy.deepcopy(base)
    odd["session"] = {"device": "smart_tv"}
    odd["history"]["orders"][0]["timestamp"] = NOW + 10 * DAY  # clock skew: order "in the future"
    odd["history"]["contacts"] = [
        {"timestamp": NOW + 5.0, "action": "coupon_50", "converted": True},
        {"timestamp": NOW - DAY, "action": "none", "converted": False},
    ]
    cases["odd_values"] = odd
    big = copy.deepcopy(base)
    big["cart"] = [_cart_line(world, j % len(world.item_ids), rng) for j in range(100)]
    cases["full_cart"] = big
    return cases


def context_strategy():
    """Hypothesis strategy of random *valid* contexts (wide ranges, optional sections)."""
    from hypothesis import strategies as st

    ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
    finite = st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False)
    stamp = st.floats(min_value=0.0, max_value=2e9, allow_nan=False, allow_infinity=False)
    count = st.integers(min_value=0, max_value=10**6)
    line = st.fixed_dictionaries(
        {"item_id": ids, "price": finite, "quantity": st.integers(1, 1000)},
        optional={"category": ids},
    )
    session = st.fixed_dictionaries(
        {},
        optional={
            "device": st.sampled_from((*DEVICES, "watch")),
            "hour": st.integers(0, 23),
            "product_views": count,
            "session_seconds": finite,
            "minutes_cart_to_abandon": finite,
            "minutes_since_abandon": finite,
            "shipping_page_views": count,
            "checkout_step": st.sampled_from(("cart", "shipping", "payment")),
            "cart_sessions": st.integers(1, 10**9),
        },
    )
    order = st.fixed_dictionaries(
        {"timestamp": stamp, "items": st.lists(ids, max_size=5), "value": finite},
        optional={
            "coupon_percent": st.one_of(st.none(), st.integers(0, 100), st.floats(0.0, 100.0)),
            "recovered_by": st.one_of(st.none(), st.sampled_from(ACTIONS)),
        },
    )
    contact = st.fixed_dictionaries(
        {
            "timestamp": stamp,
            "action": st.sampled_from((*ACTIONS, "none", "other")),
            "converted": st.booleans(),
        }
    )
    history = st.fixed_dictionaries(
        {},
        optional={
            "first_seen": stamp,
            "sessions": count,
            "product_views": count,
            "carts_abandoned": count,
            "orders": st.lists(order, max_size=6),
            "contacts": st.lists(contact, max_size=6),
        },
    )
    channels = st.fixed_dictionaries(
        {}, optional={name: st.booleans() for name in ("email", "sms", "push")}
    )
    return st.fixed_dictionaries(
        {"user_id": ids, "timestamp": stamp, "cart": st.lists(line, min_size=1, max_size=5)},
        optional={
            "session": st.one_of(st.none(), session),
            "channels": st.one_of(st.none(), channels),
            "history": st.one_of(st.none(), history),
        },
    )
