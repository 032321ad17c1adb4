"""Context records -> the engine's feature matrix, computed once per batch.

The training loop asks a policy for probabilities on a batch of contexts and later updates it
with the same batch; :class:`BatchFeatures` remembers the matrix of the last batch (by identity
of the sequence object) so the contexts are transformed once. :class:`FeatureVectorPolicy` is the
base of the policies that decide from the engine's feature vectors.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.features import RECOVERY_FEATURES, FeatureBuilder
from policies._batch import check_mask_batch, column_index
from policies.base import Policy


class BatchFeatures:
    """A :class:`FeatureBuilder` plus a one-batch cache."""

    def __init__(self, builder: FeatureBuilder | None = None) -> None:
        if builder is not None and not isinstance(builder, FeatureBuilder):
            raise ValueError(
                f"features == {type(builder).__name__}, must be an engine FeatureBuilder or None"
            )
        self.builder = builder if builder is not None else FeatureBuilder()
        self.names: tuple[str, ...] = self.builder.feature_names
        self._last: tuple[Sequence[Mapping[str, Any]], np.ndarray] | None = None

    def one(self, context: Mapping[str, Any]) -> np.ndarray:
        """Feature vector of one (validated) context."""
        return self.builder.transform(context)

    def many(self, contexts: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``(n, d)`` features; reuses the last result when given the same sequence object."""
        last = self._last
        if last is not None and last[0] is contexts and len(contexts) == last[1].shape[0]:
            return last[1]
        X = self.builder.transform_many(contexts)
        self._last = (contexts, X)
        return X

    def from_logged(self, features: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """Reorder logged feature columns into this builder's order (``f_<name>`` accepted).

        Recovery features a log lacks (decisions logged without ``recovery``) are 0, as the
        builder computes them for such contexts.
        """
        X = np.asarray(features, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(feature_names):
            raise ValueError(f"features has shape {X.shape}, must be (n, {len(feature_names)})")
        logged = {str(n)[2:] if str(n).startswith("f_") else str(n) for n in feature_names}
        absent = [n for n in self.names if n in RECOVERY_FEATURES and n not in logged]
        if not absent:
            index = column_index(feature_names, self.names)
            if index == list(range(X.shape[1])):  # already in this builder's order
                return X
            return X[:, index]
        present = [n for n in self.names if n not in absent]
        # column by column into a column-major array: contiguous copies whatever X's layout
        out = np.zeros((X.shape[0], len(self.names)), order="F")
        for src, name in zip(column_index(feature_names, present), present, strict=True):
            out[:, self.names.index(name)] = X[:, src]
        return out


class FeatureVectorPolicy(Policy):
    """A policy that decides from feature matrices.

    One context, a batch of contexts and logged features all go through :meth:`_decide` (the
    subclass sets ``self.features``).
    """

    features: BatchFeatures

    @abstractmethod
    def _decide(self, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` probabilities for the rows of ``X`` under the bool ``mask``."""

    def _probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        return self._decide(self.features.one(context)[None, :], eligible[None, :])[0]

    def probabilities_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        eligible: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> np.ndarray:
        """Probabilities for a batch of contexts, their features built in one matrix."""
        mask = check_mask_batch(eligible, len(self.action_names), len(contexts))
        return self._decide(self.features.many(contexts), mask)

    def feature_probabilities(
        self, features: np.ndarray, feature_names: Sequence[str], eligible: np.ndarray
    ) -> np.ndarray:
        """Probabilities from logged feature rows, mapped to this policy's feature layout."""
        X = self.features.from_logged(features, feature_names)
        return self._decide(X, check_mask_batch(eligible, len(self.action_names), X.shape[0]))
