"""Action sampling: seeded uniform numbers and the inverse-CDF draw over eligible actions.

>>> stream = UniformStream(seed=0)
>>> u = stream.next()
>>> 0.0 <= u < 1.0, sample_index([0.5, 0.0, 0.5], [True, False, True], u) in (0, 2)
(True, True)
"""

from __future__ import annotations

import bisect
import itertools
import threading
from typing import Any

import numpy as np

__all__ = ["UniformStream", "sample_index"]

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
            return self._rng.bit_generator.state, list(self._buffer)

    def restore(self, rng_state: dict[str, Any], pending: list[float]) -> None:
        """Resume from what :meth:`state` returned."""
        with self._lock:
            self._rng.bit_generator.state = rng_state
            self._buffer = [float(u) for u in pending]


def sample_index(probabilities: list[float], eligible: list[bool], u: float) -> int:
    """Index drawn from ``probabilities`` with the uniform number ``u`` in [0, 1) (inverse CDF).

    Float edge cases (``u`` at the very top of the CDF) fall to the last eligible action, so an
    ineligible action is never returned.

    >>> sample_index([0.2, 0.0, 0.8], [True, False, True], 0.1), sample_index([0.2, 0.0, 0.8], [True, False, True], 0.5)
    (0, 2)
    """
    cdf = list(itertools.accumulate(probabilities))
    a = bisect.bisect_right(cdf, u * cdf[-1])
    if a >= len(cdf) or not eligible[a]:
        a = len(eligible) - 1 - eligible[::-1].index(True)
    return a
