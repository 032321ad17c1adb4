"""The contract every contextual-bandit learner follows.

Public methods of :class:`Learner` validate inputs, hold the learner's lock, scale rewards and
keep the bookkeeping; a concrete learner implements a few private hooks (``_probabilities``,
``_update``, ``_params``, ``_get_state``, ``_set_state`` and optionally the ``*_batch`` and
``_greedy`` variants). Sampling the action is not the learner's job: the engine samples from
:meth:`Learner.probabilities` with its own generator.

Rewards reach the hooks divided by ``reward_scale``, so hyper-parameters (exploration widths,
priors, VW costs) are expressed in those units. The default scale, 10, suits profits of roughly
-1..+60 (scaled: about -0.1..6); how much the scale matters is in ``docs/benchmarks.md``
("Learner reward scale").
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from engine.validation import check_integer, check_number, check_positive, check_probability

from ._checks import as_float_matrix, check_names
from .learner_format import FORMAT, pack_learner, unpack_learner

__all__ = ["Learner"]

logger = logging.getLogger(__name__)

_MAX_ABS = 1e30  # context entries beyond this are refused (float32 libraries overflow)


class Learner(ABC):
    """Base class: a contextual bandit over named actions and a shared feature vector.

    Parameters
    ----------
    action_names
        Names of the actions, in the order used by every array (``(n_actions,)``).
    feature_names
        Names of the entries of the shared context vector ``x`` (``(d,)``).
    reward_scale
        Rewards are divided by this before learning (must be > 0; default 10 for profits).

    All public methods are thread-safe: each takes the learner's re-entrant lock.
    """

    _classes: ClassVar[dict[str, type[Learner]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Learner._classes[cls.__name__] = cls

    def __init__(
        self,
        action_names: Sequence[str],
        feature_names: Sequence[str],
        *,
        reward_scale: float = 10.0,
    ) -> None:
        self.action_names: tuple[str, ...] = check_names("action_names", action_names)
        self.feature_names: tuple[str, ...] = check_names("feature_names", feature_names)
        self.reward_scale = check_positive(reward_scale, "reward_scale")
        self._lock = threading.RLock()
        self._n_updates = 0

    # ------------------------------------------------------------------ properties
    @property
    def n_actions(self) -> int:
        """Number of actions."""
        return len(self.action_names)

    @property
    def n_features(self) -> int:
        """Length of the shared context vector."""
        return len(self.feature_names)

    @property
    def n_updates(self) -> int:
        """Number of (context, action, reward) rounds learnt so far."""
        return self._n_updates

    # ------------------------------------------------------------------ public API
    def probabilities(self, x: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """Return the ``(n_actions,)`` float64 action distribution for context ``x``.

        Ineligible actions get exactly 0 and the entries sum to 1.
        """
        x = self._check_x(x)
        mask = self._check_eligible(eligible)
        with self._lock:
            raw = self._probabilities(x, mask)
        return _finalise(raw, mask)

    def decision_probabilities(self, x: np.ndarray, eligible: list[bool]) -> list[float]:
        """The engine's per-decision path: :meth:`probabilities` without the input checks.

        It works on and returns plain lists (one decision's 7 entries are faster in Python
        than in numpy).

        For a caller that built its inputs itself: ``x`` must be a finite float64
        ``(n_features,)`` array and ``eligible`` a list of ``n_actions`` bools with a True
        entry. The learner's output is checked as in :meth:`probabilities`.
        """
        with self._lock:
            raw = self._probabilities_list(x, eligible)
        return _finalise_list(raw, eligible)

    def probabilities_batch(self, X: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """Return ``(n, n_actions)`` distributions for the rows of ``X`` (``(n, d)``)."""
        X = self._check_X(X)
        mask = self._check_eligible_batch(eligible, X.shape[0])
        with self._lock:
            raw = self._probabilities_batch(X, mask)
        return _finalise(raw, mask)

    def update(self, x: np.ndarray, action: int, probability: float, reward: float) -> None:
        """Learn from one round: ``action`` was taken with ``probability`` and earned ``reward``."""
        x = self._check_x(x)
        action = self._check_action(action)
        probability = check_probability(probability, "probability", positive=True)
        reward = check_number(reward, "reward")
        with self._lock:
            self._update(x, action, probability, reward / self.reward_scale)
            self._n_updates += 1

    def update_batch(
        self,
        X: np.ndarray,
        actions: np.ndarray,
        probabilities: np.ndarray,
        rewards: np.ndarray,
    ) -> None:
        """Learn from ``n`` rounds at once, in row order (equivalent to ``n`` calls of update)."""
        X = self._check_X(X)
        n = X.shape[0]
        actions = self._check_actions(actions, n)
        probs = np.asarray(probabilities, dtype=np.float64)
        rewards = np.asarray(rewards, dtype=np.float64)
        if probs.shape != (n,):
            raise ValueError(f"probabilities.shape == {probs.shape}, must be ({n},)")
        if rewards.shape != (n,):
            raise ValueError(f"rewards.shape == {rewards.shape}, must be ({n},)")
        bad = ~((probs > 0.0) & (probs <= 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"probabilities[{i}] == {probs[i].item()!r}, must be in (0, 1]")
        if not np.isfinite(rewards).all():
            i = int(np.flatnonzero(~np.isfinite(rewards))[0])
            raise ValueError(f"rewards[{i}] == {rewards[i].item()!r}, must be finite")
        if n == 0:
            return
        with self._lock:
            self._update_batch(X, actions, probs, rewards / self.reward_scale)
            self._n_updates += n

    def greedy(self, x: np.ndarray, eligible: np.ndarray) -> int:
        """Return the exploit action (no exploration) among the eligible ones."""
        x = self._check_x(x)
        mask = self._check_eligible(eligible)
        with self._lock:
            action = int(self._greedy(x, mask))
        if not mask[action]:
            raise RuntimeError(f"{type(self).__name__} chose ineligible action {action}")
        return action

    def greedy_batch(self, X: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """Return the ``(n,)`` exploit actions for the rows of ``X``."""
        X = self._check_X(X)
        mask = self._check_eligible_batch(eligible, X.shape[0])
        with self._lock:
            actions = np.asarray(self._greedy_batch(X, mask), dtype=np.int64)
        if not mask[np.arange(X.shape[0]), actions].all():
            raise RuntimeError(f"{type(self).__name__} chose an ineligible action")
        return actions

    def to_bytes(self) -> bytes:
        """Serialise the learner (configuration, learnt state, random state) to bytes."""
        with self._lock:
            meta, arrays = self._get_state()
            header = {
                "format": FORMAT,
                "class": type(self).__name__,
                "action_names": list(self.action_names),
                "feature_names": list(self.feature_names),
                "reward_scale": self.reward_scale,
                "params": self._params(),
                "meta": meta,
                "n_updates": self._n_updates,
            }
        return pack_learner(header, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Learner:
        """Rebuild a learner saved by :meth:`to_bytes` (of ``cls`` or any subclass if base).

        ``data`` is not trusted: the archive is parsed by :func:`engine.model_file.load_arrays`
        (bounded memory, no pickle), the header is checked field by field, float state must be
        finite, and any failure of the learner's own restore raises ValueError as well.
        """
        header, arrays = unpack_learner(data)
        name = header["class"]
        target = Learner._classes.get(name)
        if target is None:
            raise ValueError(f"class == {name!r}, must be one of {sorted(Learner._classes)}")
        if not issubclass(target, cls):
            raise ValueError(f"class == {name!r}, cannot be loaded as {cls.__name__}")
        for key, value in arrays.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ValueError(f"state array {key!r} has non-finite entries")
        try:
            learner = target(
                header["action_names"],
                header["feature_names"],
                reward_scale=header["reward_scale"],
                **header["params"],
            )
            learner._set_state(header["meta"], arrays)
        except Exception as exc:  # wrong parameter names or types, a state that does not fit
            reason = exc if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            raise ValueError(f"serialised {name} cannot be restored: {reason}") from None
        learner._n_updates = header["n_updates"]
        logger.debug("loaded %s after %d updates", name, learner._n_updates)
        return learner

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # pickling and copy.deepcopy go through the same safe byte format
        return (Learner.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return (
            f"{type(self).__name__}(n_actions={self.n_actions}, n_features={self.n_features}"
            + (f", {params}" if params else "")
            + ")"
        )

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _probabilities(self, x: np.ndarray, eligible: np.ndarray) -> np.ndarray | list[float]:
        """Unnormalised non-negative ``(n_actions,)`` weights; ineligible entries are ignored."""

    def _probabilities_list(self, x: np.ndarray, eligible: list[bool]) -> np.ndarray | list[float]:
        """:meth:`_probabilities` for an eligibility list (override when lists are cheaper)."""
        return self._probabilities(x, np.array(eligible, dtype=bool))

    def _probabilities_batch(self, X: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return np.stack([self._probabilities(x, m) for x, m in zip(X, eligible, strict=True)])

    @abstractmethod
    def _update(self, x: np.ndarray, action: int, probability: float, reward: float) -> None:
        """Learn one round; ``reward`` is already divided by ``reward_scale``."""

    def _update_batch(
        self, X: np.ndarray, actions: np.ndarray, probabilities: np.ndarray, rewards: np.ndarray
    ) -> None:
        for x, a, p, r in zip(
            X, actions.tolist(), probabilities.tolist(), rewards.tolist(), strict=True
        ):
            self._update(x, a, p, r)

    def _greedy(self, x: np.ndarray, eligible: np.ndarray) -> int:
        weights = np.where(eligible, self._probabilities(x, eligible), -np.inf)
        return int(np.argmax(weights))

    def _greedy_batch(self, X: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        return np.array(
            [self._greedy(x, m) for x, m in zip(X, eligible, strict=True)], dtype=np.int64
        )

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """JSON-able constructor arguments other than names, reward_scale and seed."""

    @abstractmethod
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learnt state as (JSON-able metadata, named arrays)."""

    @abstractmethod
    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_get_state` returned."""

    # ------------------------------------------------------------------ validation
    def _check_x(self, x: np.ndarray) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape != (self.n_features,):
            raise ValueError(f"x.shape == {arr.shape}, must be ({self.n_features},)")
        if not np.abs(arr).max() < _MAX_ABS:  # also catches nan and inf
            raise ValueError(f"x == {arr!r}, all entries must be finite with |x| < {_MAX_ABS:g}")
        return arr

    def _check_X(self, X: np.ndarray) -> np.ndarray:
        return as_float_matrix("X", X, self.n_features, max_abs=_MAX_ABS)

    def _check_eligible(self, eligible: np.ndarray) -> np.ndarray:
        mask = _as_mask("eligible", eligible)
        if mask.shape != (self.n_actions,):
            raise ValueError(f"eligible.shape == {mask.shape}, must be ({self.n_actions},)")
        if not mask.any():
            raise ValueError("eligible has no True entry, at least one action must be eligible")
        return mask

    def _check_eligible_batch(self, eligible: np.ndarray, n: int) -> np.ndarray:
        mask = _as_mask("eligible", eligible)
        if mask.shape != (n, self.n_actions):
            raise ValueError(f"eligible.shape == {mask.shape}, must be ({n}, {self.n_actions})")
        empty = ~mask.any(axis=1)
        if empty.any():
            i = int(np.flatnonzero(empty)[0])
            raise ValueError(f"eligible[{i}] has no True entry, each row needs an eligible action")
        return mask

    def _check_action(self, action: int) -> int:
        return check_integer(action, "action", low=0, high=self.n_actions - 1)

    def _check_actions(self, actions: np.ndarray, n: int) -> np.ndarray:
        arr = np.asarray(actions)
        if arr.shape != (n,):
            raise ValueError(f"actions.shape == {arr.shape}, must be ({n},)")
        if n == 0:
            return arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise ValueError(f"actions.dtype == {arr.dtype}, must be an integer dtype")
        bad = (arr < 0) | (arr >= self.n_actions)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            found = arr[i].item()
            raise ValueError(f"actions[{i}] == {found!r}, must be in [0, {self.n_actions - 1}]")
        return arr.astype(np.int64, copy=False)


def _as_mask(name: str, value: np.ndarray) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} == {arr!r}, must be boolean (or 0/1)")
    return arr.astype(bool)


def _finalise(raw: np.ndarray | list[float], mask: np.ndarray) -> np.ndarray:
    """Zero the ineligible entries and renormalise each row to sum to 1 (float64)."""
    if mask.ndim == 1 and len(raw) == len(mask):  # one decision: plain Python is faster
        return np.array(_finalise_list(raw, mask.tolist()))
    probs = np.where(mask, np.asarray(raw, dtype=np.float64), 0.0)
    if probs.shape != mask.shape:
        raise RuntimeError(f"learner produced probabilities of shape {probs.shape}")
    total = probs.sum(axis=-1, keepdims=True)
    # nan/inf entries make the total non-finite; negative entries show in the minimum
    if probs.size and not (np.isfinite(total).all() and (total > 0).all() and probs.min() >= 0):
        raise RuntimeError(f"learner produced invalid probabilities {probs!r}")
    return probs / total


def _finalise_list(raw: np.ndarray | list[float], mask: list[bool]) -> list[float]:
    """:func:`_finalise` for one decision, on plain lists."""
    values = raw.tolist() if isinstance(raw, np.ndarray) else raw
    if len(values) != len(mask):
        raise RuntimeError(f"learner produced {len(values)} probabilities for {len(mask)} actions")
    if not all(mask):
        values = [v if ok else 0.0 for v, ok in zip(values, mask, strict=True)]
    total = sum(values)
    # nan/inf entries make the total non-finite; negative entries show in the minimum
    if not 0.0 < total < math.inf or min(values) < 0.0:
        raise RuntimeError(f"learner produced invalid probabilities {values!r}")
    return [v / total for v in values]
