"""The same action for every cart (``none`` is the control): the static baselines.

>>> import numpy as np
>>> p = StaticPolicy("coupon_10")
>>> p.name, p.probabilities({}, np.array([1, 1, 1, 1, 1, 0, 0], dtype=bool)).tolist()
('static:coupon_10', [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
>>> p.probabilities({}, np.array([1, 0, 0, 0, 0, 0, 0], dtype=bool)).tolist()  # falls back to none
[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES
from policies._batch import check_mask_batch
from policies.base import Policy


class StaticPolicy(Policy):
    """All mass on ``action`` when it is eligible, else on ``fallback`` (default ``none``)."""

    def __init__(
        self, action: str, fallback: str = "none", action_names: Sequence[str] = ACTION_NAMES
    ) -> None:
        super().__init__(action_names)
        for label, value in (("action", action), ("fallback", fallback)):
            if value not in self._index:
                raise ValueError(f"{label} == {value!r}, must be one of {list(self.action_names)}")
        self.action = action
        self.fallback = fallback
        self.name = "none" if action == "none" else f"static:{action}"

    def _probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        return self.one_hot(self.action, eligible, self.fallback)

    def _batch(self, eligible: np.ndarray) -> np.ndarray:
        mask = check_mask_batch(eligible, len(self.action_names))
        a, f = self._index[self.action], self._index[self.fallback]
        out = np.zeros(mask.shape)
        ok = mask[:, a]
        out[ok, a] = 1.0
        out[~ok, f] = 1.0
        bad = ~mask[np.arange(len(mask)), np.where(ok, a, f)]
        if bad.any():  # fallback ineligible too: spread over what is eligible
            out[bad] = mask[bad] / mask[bad].sum(axis=1, keepdims=True)
        return out

    def probabilities_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        eligible: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> np.ndarray:
        """One-hot rows on the action (else the fallback); the contexts are not read."""
        return self._batch(eligible)

    def feature_probabilities(
        self, features: np.ndarray, feature_names: Sequence[str], eligible: np.ndarray
    ) -> np.ndarray:
        """As :meth:`probabilities_batch`; the features are not read."""
        return self._batch(eligible)
