"""The one small interface every decision policy implements.

A policy maps a context record (docs/context-schema.md) and an eligibility mask to
probabilities over the action catalogue, and may learn from ``(context, action, probability,
reward)``. Like river's bandit policies, the public methods do the shared bookkeeping and
validation; a policy implements the private hooks ``_probabilities`` (and ``_update`` if it
learns), so a policy module stays short.

Ground truth is only ever *passed in*: simulation callers give ``truth`` (the simulator's
``info["expected_reward"]``) to the policies that need it (the oracle, the full-information
learner); ``policies`` never imports ``simulator``.

Example:
    >>> import numpy as np
    >>> class AlwaysRecall(Policy):
    ...     name = "always-recall"
    ...     def _probabilities(self, context, eligible, truth):
    ...         return self.one_hot("recall_message", eligible)
    >>> AlwaysRecall().probabilities({}, np.ones(7, dtype=bool)).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.actions import ACTION_NAMES


class Policy(ABC):
    """Base class: probabilities over ``action_names`` (0 on ineligible actions, summing to 1)."""

    name: str = "policy"
    learns: bool = False
    needs_truth: bool = False

    def __init__(self, action_names: Sequence[str] = ACTION_NAMES) -> None:
        self.action_names: tuple[str, ...] = tuple(action_names)
        self._index = {a: i for i, a in enumerate(self.action_names)}

    # ------------------------------------------------------------------ public API
    def probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None = None
    ) -> np.ndarray:
        """Distribution over ``action_names`` for one context."""
        mask = self._mask(eligible)
        if self.needs_truth and truth is None:
            raise ValueError(
                f"policy {self.name!r} needs truth= (the simulator's expected rewards)"
            )
        p = np.asarray(self._probabilities(context, mask, truth), dtype=np.float64)
        return _normalised(p, mask, self.name)

    def update(
        self,
        context: Mapping[str, Any],
        action: int,
        probability: float,
        reward: float,
        truth: np.ndarray | None = None,
    ) -> None:
        """Learn from one outcome (no-op for policies that do not learn)."""
        if not 0 <= int(action) < len(self.action_names):
            raise ValueError(f"action == {action!r}, must be in [0, {len(self.action_names)})")
        if not 0.0 < float(probability) <= 1.0:
            raise ValueError(f"probability == {probability!r}, must be in (0, 1]")
        self._update(context, int(action), float(probability), float(reward), truth)

    def probabilities_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        eligible: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(n, n_actions)`` for ``n`` contexts; override for a vectorised path."""
        eligible = np.asarray(eligible, dtype=bool)
        return np.stack(
            [
                self.probabilities(c, eligible[i], None if truth is None else truth[i])
                for i, c in enumerate(contexts)
            ]
        )

    def update_batch(
        self,
        contexts: Sequence[Mapping[str, Any]],
        actions: np.ndarray,
        probabilities: np.ndarray,
        rewards: np.ndarray,
        truth: np.ndarray | None = None,
    ) -> None:
        """Learn from ``n`` outcomes; override for a vectorised path."""
        for i, c in enumerate(contexts):
            self.update(
                c,
                int(actions[i]),
                float(probabilities[i]),
                float(rewards[i]),
                None if truth is None else truth[i],
            )

    def feature_probabilities(
        self, features: np.ndarray, feature_names: Sequence[str], eligible: np.ndarray
    ) -> np.ndarray:
        """``(n, n_actions)`` probabilities from logged feature rows, for off-policy evaluation.

        The decision log stores whitelisted features, not raw contexts. Policies that can decide
        from the engine's features override this; others raise ``NotImplementedError``.
        """
        raise NotImplementedError(f"policy {self.name!r} cannot decide from logged features alone")

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _probabilities(
        self, context: Mapping[str, Any], eligible: np.ndarray, truth: np.ndarray | None
    ) -> np.ndarray:
        """Unnormalised or normalised scores >= 0 over actions; ineligible entries are zeroed."""

    def _update(
        self,
        context: Mapping[str, Any],
        action: int,
        probability: float,
        reward: float,
        truth: np.ndarray | None,
    ) -> None:
        return None

    # ------------------------------------------------------------------ helpers
    def one_hot(self, action: str, eligible: np.ndarray, fallback: str = "none") -> np.ndarray:
        """All mass on ``action`` if eligible, else on ``fallback``."""
        out = np.zeros(len(self.action_names))
        out[self._index[action] if eligible[self._index[action]] else self._index[fallback]] = 1.0
        return out

    def _mask(self, eligible: np.ndarray) -> np.ndarray:
        mask = np.asarray(eligible, dtype=bool)
        if mask.shape != (len(self.action_names),):
            raise ValueError(
                f"eligible has shape {mask.shape}, must be ({len(self.action_names)},)"
            )
        if not mask.any():
            raise ValueError("eligible has no True entry: at least 'none' must be eligible")
        return mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _normalised(p: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    if p.shape != mask.shape or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"policy {name!r} returned invalid scores {p!r}")
    p = np.where(mask, p, 0.0)
    total = p.sum()
    if total <= 0:  # nothing eligible got mass: spread over eligible actions
        return mask / mask.sum()
    return p / total
