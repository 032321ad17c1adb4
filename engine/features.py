"""One feature vector per context for the learners.

:class:`FeatureBuilder` concatenates the behaviour profile (:data:`PROFILE_FEATURES`), the CF
signals (:data:`CF_FEATURES`, when a :class:`CFModel` is given), the abandonment risk (when a
:class:`RiskModel` is given) and a bias. Profile features are centred and scaled with fixed
constants (:data:`PROFILE_SCALING`, typical values of shop data) so that every coordinate is
of order one; CF features and the risk are already in ``[-1, 1]`` / ``[0, 1]``.

It assumes a valid context: the :class:`~engine.parsed.ParsedContext` that
:func:`engine.context.validate_context` returns, or a valid record (parsed here). It is built for
the ``decide`` path: one Python list, one array, two in-place numpy operations.

The builder also fixes what the learners regress on. Profit scales with the cart's value (a 10%
coupon on a 200 USD cart moves ten times the money of one on a 20 USD cart), which a model
linear in these features cannot express. With ``reward_per_value=True`` (the default) learners
are taught profit per :data:`REWARD_REFERENCE_VALUE` USD of cart value: every reward is divided
by :meth:`FeatureBuilder.reward_divisor` of its feature vector. The best action of a cart is
unchanged (all its actions share one divisor); only the fit changes (its effect on the
simulator is in ``docs/benchmarks.md``).

>>> builder = FeatureBuilder()
>>> x = builder.transform({"user_id": "u1", "timestamp": 0.0,
...                        "cart": [{"item_id": "i1", "price": 20.0, "quantity": 1}]})
>>> x.shape == (len(builder.feature_names),), builder.feature_names[-1], float(x[-1])
(True, 'bias', 1.0)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any, cast

import numpy as np

from engine.cf import CF_FEATURES, CFModel, ShopperItems
from engine.parsed import ParsedContext, parse_context
from engine.profile import PROFILE_FEATURES, profile_values
from engine.risk import RiskModel

__all__ = [
    "BIAS_FEATURE",
    "PROFILE_SCALING",
    "RECOVERY_FEATURES",
    "REWARD_REFERENCE_VALUE",
    "RISK_FEATURE",
    "FeatureBuilder",
    "recovery_values",
]

logger = logging.getLogger(__name__)

RISK_FEATURE = "risk_no_action"
BIAS_FEATURE = "bias"
#: With ``reward_per_value``, learners model profit per this many USD of cart value (the
#: simulator's mean cart value).
REWARD_REFERENCE_VALUE = 74.0
#: Smallest divisor: carts under 7.40 USD count as 7.40 USD, so that fixed contact costs on tiny
#: carts do not become huge per-value losses.
MIN_REWARD_DIVISOR = 0.1
_VALUE_FEATURE = "cart_value_log"
#: Features of a multi-touch flow (``context["recovery"]``), added with ``recovery=True``: the
#: touch index (0 at the first touch), earlier contacts, opens and clicks, the best coupon sent
#: (percent / 20) and whether the last touch was opened / clicked.
RECOVERY_FEATURES: tuple[str, ...] = (
    "touch_index",
    "previous_contacts",
    "previous_opens",
    "previous_clicks",
    "previous_coupon",
    "last_opened",
    "last_clicked",
)
_NO_RECOVERY = [0.0] * len(RECOVERY_FEATURES)


def recovery_values(ctx: ParsedContext | Mapping[str, Any]) -> list[float]:
    """:data:`RECOVERY_FEATURES` of a validated context (zeros without ``recovery``)."""
    recovery = ctx.recovery if isinstance(ctx, ParsedContext) else ctx.get("recovery")
    if not recovery:
        return list(_NO_RECOVERY)
    previous = recovery.get("previous") or ()
    contacts = opens = clicks = 0
    coupon = 0.0
    for p in previous:
        action = p["action"]
        if action != "none":
            contacts += 1
        opens += p["opened"]
        clicks += p["clicked"]
        if action.startswith("coupon_") and action[7:].isdigit():
            coupon = max(coupon, float(action[7:]))
    last = previous[-1] if previous else None
    return [
        float(recovery["touch"] - 1),
        float(contacts),
        float(opens),
        float(clicks),
        coupon / 20.0,
        float(bool(last and last["opened"])),
        float(bool(last and last["clicked"])),
    ]


#: (centre, scale) per profile feature: feature = (value - centre) / scale.
PROFILE_SCALING: dict[str, tuple[float, float]] = {
    "session_views_log": (1.8, 0.8),
    "lifetime_views_log": (4.0, 1.5),
    "lifetime_sessions_log": (2.5, 1.2),
    "carts_abandoned_log": (1.0, 0.8),
    "cart_to_abandon_log": (1.8, 1.0),
    "since_abandon_log": (3.4, 1.0),
    "shipping_views_log": (0.4, 0.5),
    "sessions_per_order_log": (1.5, 1.0),
    "recency_days_log": (4.0, 1.5),
    "frequency_log": (1.2, 1.0),
    "monetary_log": (4.0, 1.5),
    "coupon_share": (0.2, 0.2),
    "discount_depth": (0.05, 0.1),
    "contacts_log": (0.8, 0.8),
    "contact_conversion": (0.05, 0.1),
    "conversion_reminder": (0.05, 0.1),
    "conversion_coupon": (0.05, 0.1),
    "conversion_offer": (0.05, 0.1),
    "conversion_recommendation": (0.05, 0.1),
    "contact_days_log": (4.5, 1.5),
    "device_mobile": (0.0, 1.0),
    "device_desktop": (0.0, 1.0),
    "device_tablet": (0.0, 1.0),
    "hour_sin": (0.0, 1.0),
    "hour_cos": (0.0, 1.0),
    "cart_value_log": (4.0, 1.0),
    "cart_size_log": (1.0, 0.5),
    "checkout_shipping": (0.0, 1.0),
    "checkout_payment": (0.0, 1.0),
    "cart_sessions_log": (0.3, 0.4),
    "session_minutes_log": (1.8, 0.8),
    "tenure_days_log": (5.5, 1.0),
    "basket_ratio_log": (0.0, 0.8),
}


class FeatureBuilder:
    """Context -> float64 feature vector of fixed length.

    Args:
        cf: fitted CF model; adds :data:`CF_FEATURES` when given.
        risk: fitted risk model on profile features; adds :data:`RISK_FEATURE` when given.
            Its ``feature_names`` must be profile feature names (any subset, any order).
        reward_per_value: learners regress on profit per :data:`REWARD_REFERENCE_VALUE` USD of
            cart value (see :meth:`reward_divisor`); False: on profit itself.
        recovery: add :data:`RECOVERY_FEATURES` (multi-touch flows) before the bias.

    Attributes:
        feature_names: names of the output coordinates, bias last.
    """

    def __init__(
        self,
        cf: CFModel | None = None,
        risk: RiskModel | None = None,
        *,
        reward_per_value: bool = True,
        recovery: bool = False,
    ) -> None:
        if not isinstance(reward_per_value, bool):
            raise ValueError(f"reward_per_value == {reward_per_value!r}, must be a bool")
        if not isinstance(recovery, bool):
            raise ValueError(f"recovery == {recovery!r}, must be a bool")
        self.reward_per_value = reward_per_value
        self.recovery = recovery
        if cf is not None and not isinstance(cf, CFModel):
            raise ValueError(f"cf == {type(cf).__name__}, must be a CFModel or None")
        if risk is not None and not isinstance(risk, RiskModel):
            raise ValueError(f"risk == {type(risk).__name__}, must be a RiskModel or None")
        if cf is not None:
            cf._require_fitted()
        self._risk_rows: list[int] | None = None
        if risk is not None:
            risk._require_fitted()
            unknown = [n for n in risk.feature_names if n not in PROFILE_FEATURES]
            if unknown:
                raise ValueError(
                    f"risk.feature_names contains {unknown!r}, must be names from PROFILE_FEATURES"
                )
            if risk.feature_names != PROFILE_FEATURES:
                self._risk_rows = [PROFILE_FEATURES.index(n) for n in risk.feature_names]
        self.cf = cf
        self.risk = risk
        names = list(PROFILE_FEATURES)
        centre = [PROFILE_SCALING[n][0] for n in PROFILE_FEATURES]
        scale = [PROFILE_SCALING[n][1] for n in PROFILE_FEATURES]
        extra = (
            (list(CF_FEATURES) if cf is not None else [])
            + ([RISK_FEATURE] if risk is not None else [])
            + (list(RECOVERY_FEATURES) if recovery else [])
        )
        names += [*extra, BIAS_FEATURE]
        centre += [0.0] * (len(extra) + 1)
        scale += [1.0] * (len(extra) + 1)
        self.feature_names: tuple[str, ...] = tuple(names)
        self._centre = np.asarray(centre, dtype=np.float64)
        self._inv_scale = 1.0 / np.asarray(scale, dtype=np.float64)
        i = names.index(_VALUE_FEATURE)
        self._value_column, self._value_centre, self._value_scale = i, centre[i], scale[i]

    @property
    def n_features(self) -> int:
        """Length of the feature vector."""
        return len(self.feature_names)

    def _values(self, ctx: ParsedContext, cf_items: ShopperItems | None = None) -> list[float]:
        values = profile_values(ctx)
        risk = self.risk
        p = 0.0
        if risk is not None:
            rows = self._risk_rows
            p = risk.predict_one(values if rows is None else [values[i] for i in rows])
        if self.cf is not None:
            values += self.cf.features(ctx, cf_items)
        if risk is not None:
            values.append(p)
        if self.recovery:
            values += recovery_values(ctx)
        values.append(1.0)
        return values

    def transform(
        self, ctx: ParsedContext | Mapping[str, Any], cf_items: ShopperItems | None = None
    ) -> np.ndarray:
        """Feature vector of one valid context, shape ``(n_features,)``, float64, finite.

        ``ctx``: the :class:`~engine.parsed.ParsedContext` that
        :func:`~engine.context.validate_context` returned, or a valid record (parsed here).
        ``cf_items``: the CF model's :meth:`~engine.cf.CFModel.shopper_items` of ``ctx``, when the
        caller already has it (the engine reuses it for the recommendation payload).
        """
        if type(ctx) is not ParsedContext:
            ctx = parse_context(cast("Mapping[str, Any]", ctx))
        out = np.fromiter(self._values(ctx, cf_items), np.float64)
        out -= self._centre
        out *= self._inv_scale
        return out

    def transform_many(self, contexts: Iterable[ParsedContext | Mapping[str, Any]]) -> np.ndarray:
        """Feature matrix of valid contexts, shape ``(n, n_features)``."""
        rows = [
            self._values(
                ctx if type(ctx) is ParsedContext else parse_context(cast("Mapping[str, Any]", ctx))
            )
            for ctx in contexts
        ]
        if not rows:
            return np.empty((0, self.n_features), dtype=np.float64)
        out = np.array(rows, dtype=np.float64)
        out -= self._centre
        out *= self._inv_scale
        return out

    def reward_divisor(self, X: np.ndarray) -> np.ndarray | np.float64:
        """What a learner divides the reward of each feature row of ``X`` by.

        The cart's value (recovered from the ``cart_value_log`` feature) over
        :data:`REWARD_REFERENCE_VALUE`, at least :data:`MIN_REWARD_DIVISOR`; all ones when
        ``reward_per_value`` is off. ``X`` is one feature vector (a 0-d array comes back) or
        ``(n, n_features)`` rows (an ``(n,)`` array).

        >>> b = FeatureBuilder()
        >>> x = b.transform({"user_id": "u1", "timestamp": 0.0,
        ...                  "cart": [{"item_id": "i1", "price": 37.0, "quantity": 2}]})
        >>> plain = FeatureBuilder(reward_per_value=False)
        >>> round(float(b.reward_divisor(x)), 6), float(plain.reward_divisor(x))
        (1.0, 1.0)
        """
        if isinstance(X, np.ndarray) and X.shape == (self.n_features,):  # the engine's reward path
            if not self.reward_per_value:
                return np.float64(1.0)
            value = math.expm1(
                float(X[self._value_column]) * self._value_scale + self._value_centre
            )
            return np.float64(max(value / REWARD_REFERENCE_VALUE, MIN_REWARD_DIVISOR))
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1:] != (self.n_features,) or X.ndim > 2:
            raise ValueError(
                f"X has shape {X.shape}, must be ({self.n_features},) or (n, {self.n_features})"
            )
        column = X[..., self._value_column]
        if not self.reward_per_value:
            return np.ones_like(column)
        values = np.expm1(column * self._value_scale + self._value_centre)
        return np.maximum(values / REWARD_REFERENCE_VALUE, MIN_REWARD_DIVISOR)

    def named(self, ctx: ParsedContext | Mapping[str, Any]) -> dict[str, float]:
        """``{name: value}`` of :meth:`transform` (for logs and debugging)."""
        return dict(zip(self.feature_names, self.transform(ctx).tolist(), strict=True))
