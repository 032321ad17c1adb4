"""Drawing an action from a probability vector by inverse CDF: one rule, two entry points.

The action is the number of cumulative probabilities at or below ``u * total`` (``u`` uniform in
[0, 1)), so an action without probability mass is never drawn. A float edge case that would land
past the last action or on one without mass falls to the last action that can be taken.

- :class:`UniformStream`: the engine's seeded uniforms, drawn a block at a time, thread-safe.
- :func:`sample_index`: one vector as plain lists and one uniform, for ``DecisionEngine.decide``
  (a 7-entry list is faster to walk in Python than to hand to numpy).
- :func:`sample_actions`: a batch of rows and a generator, for the simulator's training loop,
  its A/B experiments and the synthetic OPE logs; draws ``rng.random(n)``, one uniform per row.

Both return the same action for the same probabilities and uniform.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import threading
from typing import Any

import numpy as np

__all__ = ["UniformStream", "sample_actions", "sample_index"]

_BLOCK = 64  # uniforms drawn at a time


class UniformStream:
    """Uniform numbers in [0, 1) from one seeded generator; thread-safe.

    They are drawn a block at a time and handed out in the order one draw per call would give;
    :meth:`state` and :meth:`restore` carry the generator and the numbers drawn but not handed
    out yet (a saved engine resumes the same sequence).

    Args:
        seed: seed of the generator.
    """

    def __init__(self, seed: int | None) -> None:
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._buffer: list[float] = []  # consumed from the end

    def next(self) -> float:
        """The next uniform number."""
        with self._lock:
            buffer = self._buffer
            if not buffer:
                buffer += reversed(self._rng.random(_BLOCK).tolist())
            return buffer.pop()

    def state(self) -> tuple[dict[str, Any], list[float]]:
        """``(bit generator state, numbers drawn but not handed out, in the stored order)``."""
        with self._lock:
            return dict(self._rng.bit_generator.state), list(self._buffer)

    def restore(self, rng_state: dict[str, Any], pending: list[float]) -> None:
        """Resume from what :meth:`state` returned."""
        with self._lock:
            self._rng.bit_generator.state = rng_state
            self._buffer = [float(u) for u in pending]


def sample_index(probabilities: list[float], eligible: list[bool], u: float) -> int:
    """Index drawn from ``probabilities`` with the uniform number ``u`` in [0, 1) (inverse CDF).

    Float edge cases (``u`` at the very top of the CDF) fall to the last eligible action, so an
    ineligible action is never returned.

    >>> mask = [True, False, True]
    >>> sample_index([0.2, 0.0, 0.8], mask, 0.1), sample_index([0.2, 0.0, 0.8], mask, 0.5)
    (0, 2)
    """
    cdf = list(itertools.accumulate(probabilities))
    a = bisect.bisect_right(cdf, u * cdf[-1])
    if a >= len(cdf) or not eligible[a]:
        a = len(eligible) - 1 - eligible[::-1].index(True)
    return a


def sample_actions(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``(n, n_actions)`` distributions, never one without mass.

    The batch form of :func:`sample_index` (eligible = positive probability); draws
    ``rng.random(n)``.

    >>> p = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    >>> sample_actions(p, np.random.default_rng(0))
    array([1, 0])
    """
    cdf = np.cumsum(probabilities, axis=1)
    u = rng.random(len(cdf))[:, None] * cdf[:, -1:]
    actions = (cdf <= u).sum(axis=1).astype(np.int64, copy=False)
    last = cdf.shape[1] - 1
    stray = probabilities[np.arange(actions.size), np.minimum(actions, last)] <= 0
    stray |= actions > last
    if stray.any():
        has_mass = probabilities[stray] > 0
        actions[stray] = last - np.argmax(has_mass[:, ::-1], axis=1)
    return actions


def hashed_uniform(seed: int | None, key: str) -> float:
    """A uniform number in [0, 1) determined by ``seed`` and ``key`` (a keyed BLAKE2b hash).

    ``DecisionEngine.decide`` samples with it when the caller names the decision, so a
    retried request (same id, same context, same model) gets the same action in any process.

    >>> hashed_uniform(0, "req-123") == hashed_uniform(0, "req-123") != hashed_uniform(1, "req-123")
    True
    >>> 0.0 <= hashed_uniform(0, "req-123") < 1.0
    True
    """
    digest = hashlib.blake2b(
        key.encode("utf-8"), digest_size=8, key=str(seed).encode("utf-8")
    ).digest()
    return (int.from_bytes(digest, "little") >> 11) * 2.0**-53
