"""Uniform over the eligible actions: the pure-exploration baseline.

>>> import numpy as np
>>> UniformPolicy().probabilities({}, np.array([1, 0, 1, 1, 0, 0, 1], dtype=bool)).tolist()
[0.25, 0.0, 0.25, 0.25, 0.0, 0.0, 0.25]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from policies._batch import check_mask_batch
from policies.base import Policy


class UniformPolicy(Policy):
    """Equal probability on every eligible action."""

    name = "uniform"

    def _probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        return eligible.astype(np.float64)

    def probabilities_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        eligible: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> np.ndarray:
        """Equal probability on each row's eligible actions; the contexts are not read."""
        mask = check_mask_batch(eligible, len(self.action_names))
        return mask / mask.sum(axis=1, keepdims=True)

    def feature_probabilities(
        self, features: np.ndarray, feature_names: Sequence[str], eligible: np.ndarray
    ) -> np.ndarray:
        """As :meth:`probabilities_batch`; the features are not read."""
        return self.probabilities_batch((), eligible)
