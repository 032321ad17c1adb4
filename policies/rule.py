"""The growth team's hand rule today: a coupon for big carts, a reminder for the rest.

``coupon`` (default ``coupon_10``) when the cart is worth at least ``threshold`` (default $100),
else ``reminder`` (default ``recall_message``); ``none`` when the chosen action is not eligible.
It decides from a context record or from the engine's logged features (``cart_value_log``,
inverted with the builder's fixed scaling), so it can be evaluated off-policy on decision logs.

>>> import numpy as np
>>> rule = RulePolicy()
>>> cart = {"cart": [{"item_id": "i1", "price": 60.0, "quantity": 2}]}
>>> rule.action_names[int(rule.probabilities(cart, np.ones(7, dtype=bool)).argmax())]
'coupon_10'
>>> rule.probabilities({"cart": [{"item_id": "i1", "price": 20.0, "quantity": 1}]},
...                    np.ones(7, dtype=bool)).tolist()
[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES
from engine.features import PROFILE_SCALING
from engine.parsed import cart_totals
from policies._batch import check_mask_batch, column_index
from policies.base import Policy

_VALUE_FEATURE = "cart_value_log"


def cart_value(context: Mapping[str, Any]) -> float:
    """Sum of price x quantity over the cart lines (0 for a context with no cart).

    The same sum as :func:`engine.parsed.cart_totals`.
    """
    return cart_totals(context.get("cart") or ())[0]


class RulePolicy(Policy):
    """``coupon`` for carts >= ``threshold`` USD, else ``reminder``; ``none`` if ineligible."""

    name = "rule"

    def __init__(
        self,
        threshold: float = 100.0,
        coupon: str = "coupon_10",
        reminder: str = "recall_message",
        action_names: Sequence[str] = ACTION_NAMES,
    ) -> None:
        super().__init__(action_names)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not math.isfinite(threshold)
            or threshold < 0
        ):
            raise ValueError(f"threshold == {threshold!r}, must be a finite number >= 0")
        for label, value in (("coupon", coupon), ("reminder", reminder)):
            if value not in self._index:
                raise ValueError(f"{label} == {value!r}, must be one of {list(self.action_names)}")
        self.threshold = float(threshold)
        self.coupon = coupon
        self.reminder = reminder

    def _probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        action = self.coupon if cart_value(context) >= self.threshold else self.reminder
        return self.one_hot(action, eligible)

    def decide_values(self, values: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` one-hot rows for carts worth ``values`` USD."""
        mask = check_mask_batch(eligible, len(self.action_names), len(values))
        want = np.where(
            np.asarray(values) >= self.threshold,
            self._index[self.coupon],
            self._index[self.reminder],
        )
        rows = np.arange(len(mask))
        chosen = np.where(mask[rows, want], want, self._index["none"])
        out = np.zeros(mask.shape)
        out[rows, chosen] = 1.0
        return out

    def probabilities_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        eligible: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> np.ndarray:
        """The rule applied to each context's cart value."""
        return self.decide_values(
            np.array([cart_value(c) for c in contexts], dtype=np.float64), eligible
        )

    def feature_probabilities(
        self, features: np.ndarray, feature_names: Sequence[str], eligible: np.ndarray
    ) -> np.ndarray:
        """The rule applied to the cart value recovered from the logged value feature."""
        X = np.asarray(features, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(feature_names):
            raise ValueError(f"features has shape {X.shape}, must be (n, {len(feature_names)})")
        (col,) = column_index(feature_names, [_VALUE_FEATURE])
        centre, scale = PROFILE_SCALING[_VALUE_FEATURE]
        # the builder stores (log1p(value) - centre) / scale; float rounding near the threshold
        # is absorbed by a relative tolerance of 1e-9
        values = np.expm1(X[:, col] * scale + centre) * (1.0 + 1e-9)
        return self.decide_values(values, eligible)
