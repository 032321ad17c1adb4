"""The oracle: the best eligible action under the simulator's truth.

It is an upper bound, not a policy anyone can run in production.

>>> import numpy as np
>>> truth = np.array([0.0, 1.0, 3.0, 2.0, 0.5, 0.1, 9.0])
>>> eligible = np.array([1, 1, 1, 1, 1, 1, 0], dtype=bool)
>>> int(OraclePolicy().probabilities({}, eligible, truth=truth).argmax())
2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from policies._batch import check_mask_batch, one_hot_batch
from policies.base import Policy


class OraclePolicy(Policy):
    """All mass on ``argmax(truth)`` among the eligible actions (``truth``: expected rewards)."""

    name = "oracle"
    needs_truth = True

    def _probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        return self.probabilities_batch((context,), eligible[None, :], np.asarray(truth)[None, :])[
            0
        ]

    def probabilities_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        eligible: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> np.ndarray:
        """One-hot on each row's best eligible action under ``truth`` (required)."""
        mask = check_mask_batch(eligible, len(self.action_names))
        if truth is None:
            raise ValueError(
                f"policy {self.name!r} needs truth= (the simulator's expected rewards)"
            )
        values = np.asarray(truth, dtype=np.float64)
        if values.shape != mask.shape or not np.all(np.isfinite(values)):
            raise ValueError(
                f"truth has shape {values.shape}, must be finite with shape {mask.shape}"
            )
        return one_hot_batch(np.where(mask, values, -np.inf).argmax(axis=1), mask.shape[1])
