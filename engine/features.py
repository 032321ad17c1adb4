"""One feature vector per context for the learners.

:class:`FeatureBuilder` concatenates the behaviour profile (:data:`PROFILE_FEATURES`), the CF
signals (:data:`CF_FEATURES`, when a :class:`CFModel` is given), the abandonment risk (when a
:class:`RiskModel` is given) and a bias. Profile features are centred and scaled with fixed
constants (:data:`PROFILE_SCALING`, typical values of shop data) so that every coordinate is
of order one; CF features and the risk are already in ``[-1, 1]`` / ``[0, 1]``.

It assumes a validated context (:func:`engine.context.validate_context`) and is built for the
``decide`` path: one Python list, one array, two in-place numpy operations.

>>> builder = FeatureBuilder()
>>> x = builder.transform({"user_id": "u1", "timestamp": 0.0,
...                        "cart": [{"item_id": "i1", "price": 20.0, "quantity": 1}]})
>>> x.shape == (len(builder.feature_names),), builder.feature_names[-1], float(x[-1])
(True, 'bias', 1.0)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from engine.cf import CF_FEATURES, CFModel
from engine.profile import PROFILE_FEATURES, profile_values
from engine.risk import RiskModel

__all__ = ["BIAS_FEATURE", "FeatureBuilder", "PROFILE_SCALING", "RISK_FEATURE"]

logger = logging.getLogger(__name__)

RISK_FEATURE = "risk_no_action"
BIAS_FEATURE = "bias"

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
}


class FeatureBuilder:
    """Context -> float64 feature vector of fixed length.

    Args:
        cf: fitted CF model; adds :data:`CF_FEATURES` when given.
        risk: fitted risk model on profile features; adds :data:`RISK_FEATURE` when given.
            Its ``feature_names`` must be profile feature names (any subset, any order).

    Attributes:
        feature_names: names of the output coordinates, bias last.
    """

    def __init__(self, cf: CFModel | None = None, risk: RiskModel | None = None) -> None:
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
        extra = (list(CF_FEATURES) if cf is not None else []) + (
            [RISK_FEATURE] if risk is not None else []
        )
        names += extra + [BIAS_FEATURE]
        centre += [0.0] * (len(extra) + 1)
        scale += [1.0] * (len(extra) + 1)
        self.feature_names: tuple[str, ...] = tuple(names)
        self._centre = np.asarray(centre, dtype=np.float64)
        self._inv_scale = 1.0 / np.asarray(scale, dtype=np.float64)

    @property
    def n_features(self) -> int:
        """Length of the feature vector."""
        return len(self.feature_names)

    def _values(self, ctx: Mapping[str, Any]) -> list[float]:
        values = profile_values(ctx)
        risk = self.risk
        p = 0.0
        if risk is not None:
            rows = self._risk_rows
            p = risk.predict_one(values if rows is None else [values[i] for i in rows])
        if self.cf is not None:
            values += self.cf.features(ctx)
        if risk is not None:
            values.append(p)
        values.append(1.0)
        return values

    def transform(self, ctx: Mapping[str, Any]) -> np.ndarray:
        """Feature vector of one validated context, shape ``(n_features,)``, float64, finite."""
        out = np.array(self._values(ctx), dtype=np.float64)
        out -= self._centre
        out *= self._inv_scale
        return out

    def transform_many(self, contexts: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Feature matrix of validated contexts, shape ``(n, n_features)``."""
        rows = [self._values(ctx) for ctx in contexts]
        if not rows:
            return np.empty((0, self.n_features), dtype=np.float64)
        out = np.array(rows, dtype=np.float64)
        out -= self._centre
        out *= self._inv_scale
        return out

    def named(self, ctx: Mapping[str, Any]) -> dict[str, float]:
        """``{name: value}`` of :meth:`transform` (for logs and debugging)."""
        return dict(zip(self.feature_names, self.transform(ctx).tolist()))
