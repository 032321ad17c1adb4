"""Configuration of the shop simulation, validated once at construction.

Every number that shapes shopper behaviour lives here, with the public figure it was calibrated
to (see :mod:`simulator.shop.response` for how each one enters the response model).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.validation import (
    check_integer,
    check_non_negative,
    check_number,
    check_positive,
    check_probability,
)
from simulator.shop.constants import SHOPPER_TYPES

DEFAULT_MIXTURE: dict[str, float] = {
    # Baymard: "extra costs too high" is the #1 abandonment reason (48%), so price-sensitive
    # shoppers are the largest group; the rest is split by the other top reasons.
    "hesitant": 0.25,
    "price_sensitive": 0.35,
    "impulsive": 0.20,
    "forgetful": 0.20,
}


@dataclass(frozen=True)
class SimConfig:
    """Parameters of the simulated shop.

    Example:
        >>> cfg = SimConfig.from_dict({"n_shoppers": 500, "seed_catalog": 3})
        >>> cfg.n_shoppers
        500
        >>> SimConfig.from_dict({"n_shopers": 5})
        Traceback (most recent call last):
        ...
        ValueError: SimConfig: unknown key 'n_shopers'; known keys: ...
    """

    n_shoppers: int = 10_000
    n_items: int = 500
    n_categories: int = 10
    n_factors: int = 8
    type_mixture: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIXTURE))
    carts_per_day: float = 350.0
    start_time: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    contact_cost: float = 0.25
    offer_cost_share: float = 0.07
    offer_cost_cap: float = 8.0
    initial_orders_mean: float = 3.0
    completed_per_abandoned: float = 0.302 / 0.698  # Baymard: 69.8% of carts are abandoned
    coupon_conditioning: bool = True
    fatigue: bool = True
    history_cap: int = 20
    pool_size: int = 30
    mixture_shift: Mapping[str, Any] | None = None
    seed_catalog: int | None = None

    def __post_init__(self) -> None:
        for name, low in (
            ("n_shoppers", 1),
            ("n_items", 10),
            ("n_categories", 1),
            ("n_factors", 1),
            ("history_cap", 1),
            ("pool_size", 5),
        ):
            check_integer(getattr(self, name), f"SimConfig.{name}", low=low)
        if self.n_categories > self.n_items:
            raise ValueError(
                f"SimConfig: n_categories == {self.n_categories}, "
                f"must be <= n_items == {self.n_items}"
            )
        if self.pool_size > self.n_items:
            raise ValueError(
                f"SimConfig: pool_size == {self.pool_size}, must be <= n_items == {self.n_items}"
            )
        check_positive(self.carts_per_day, "SimConfig.carts_per_day")
        for name in (
            "contact_cost",
            "offer_cost_cap",
            "initial_orders_mean",
            "completed_per_abandoned",
        ):
            check_non_negative(getattr(self, name), f"SimConfig.{name}")
        check_probability(self.offer_cost_share, "SimConfig.offer_cost_share")
        check_number(self.start_time, "SimConfig.start_time")
        object.__setattr__(self, "type_mixture", check_mixture("type_mixture", self.type_mixture))
        if self.mixture_shift is not None:
            shift = dict(self.mixture_shift)
            unknown = set(shift) - {"at_episode", "mixture", "share"}
            if unknown:
                raise ValueError(f"SimConfig: mixture_shift has unknown key {sorted(unknown)[0]!r}")
            if "at_episode" not in shift or "mixture" not in shift:
                raise ValueError(
                    f"SimConfig: mixture_shift == {shift!r}, must have 'at_episode' and 'mixture'"
                )
            check_integer(shift["at_episode"], "SimConfig.mixture_shift.at_episode", low=1)
            shift["mixture"] = check_mixture("mixture_shift.mixture", shift["mixture"])
            shift["share"] = check_probability(
                shift.get("share", 1.0), "SimConfig.mixture_shift.share"
            )
            object.__setattr__(self, "mixture_shift", shift)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> SimConfig:
        """Build a config from a plain mapping; unknown keys are errors that name the key."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ValueError(
                    f"SimConfig: unknown key {key!r}; known keys: {', '.join(sorted(known))}"
                )
        return cls(**values)

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with some fields changed (validated again)."""
        return SimConfig.from_dict({**dataclasses.asdict(self), **changes})


def check_mixture(name: str, mixture: Mapping[str, float]) -> dict[str, float]:
    """Validate a type mixture: known type names, non-negative shares summing to 1."""
    if not isinstance(mixture, Mapping):
        raise ValueError(
            f"SimConfig: {name} == {mixture!r}, must be a mapping of type name to share"
        )
    out = {}
    for key, share in mixture.items():
        if key not in SHOPPER_TYPES:
            raise ValueError(
                f"SimConfig: {name} has unknown shopper type {key!r}; "
                f"known: {', '.join(SHOPPER_TYPES)}"
            )
        out[key] = check_non_negative(share, f"SimConfig.{name}[{key!r}]")
    total = sum(out.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"SimConfig: {name} sums to {total:.6g}, must sum to 1")
    return {t: out.get(t, 0.0) for t in SHOPPER_TYPES}
