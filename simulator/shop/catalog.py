"""The simulated product catalogue: items with a category, price, margin and latent taste factors.

Items of one category share a centroid in taste space, so purchase histories drawn from shoppers'
tastes carry real structure that collaborative filtering can recover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CATEGORY_NAMES: tuple[str, ...] = (
    "shoes",
    "tops",
    "trousers",
    "dresses",
    "outerwear",
    "accessories",
    "bags",
    "sportswear",
    "underwear",
    "beauty",
)
# Median price per category (USD), loosely after fashion e-commerce price points.
_CATEGORY_MEDIAN_PRICE = (70.0, 25.0, 45.0, 55.0, 110.0, 20.0, 60.0, 40.0, 18.0, 22.0)


@dataclass(frozen=True)
class Catalog:
    """Items of the shop. Arrays are indexed by item index; ``item_ids[i]`` is the public id."""

    item_ids: tuple[str, ...]
    category: np.ndarray  # (n_items,) int
    category_names: tuple[str, ...]
    price: np.ndarray  # (n_items,) float, USD
    margin_rate: np.ndarray  # (n_items,) float, share of price that is margin
    factors: np.ndarray  # (n_items, n_factors) latent taste factors
    popularity: np.ndarray  # (n_items,) log-popularity bias

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.item_ids)

    @classmethod
    def generate(
        cls, n_items: int, n_categories: int, n_factors: int, rng: np.random.Generator
    ) -> Catalog:
        """Draw a catalogue: category centroids in taste space, items scattered around them."""
        names = tuple(
            CATEGORY_NAMES[j] if j < len(CATEGORY_NAMES) else f"category_{j}"
            for j in range(n_categories)
        )
        category = np.sort(rng.integers(0, n_categories, size=n_items))
        category[:n_categories] = np.arange(n_categories)  # every category has at least one item
        category = np.sort(category)
        centroids = rng.normal(0.0, 1.0, size=(n_categories, n_factors))
        factors = centroids[category] + 0.6 * rng.normal(0.0, 1.0, size=(n_items, n_factors))
        medians = np.array(
            [_CATEGORY_MEDIAN_PRICE[j % len(_CATEGORY_MEDIAN_PRICE)] for j in range(n_categories)]
        )
        price = np.round(medians[category] * rng.lognormal(0.0, 0.4, size=n_items), 2)
        price = np.maximum(price, 3.0)
        margin_rate = rng.uniform(0.25, 0.50, size=n_items)
        popularity = rng.normal(0.0, 0.5, size=n_items)
        item_ids = tuple(f"i{j:05d}" for j in range(n_items))
        return cls(item_ids, category, names, price, margin_rate, factors, popularity)
