"""Drawing an action from a probability vector by inverse CDF: one rule, two entry points.

The action is the number of cumulative probabilities at or below ``u * total`` (``u`` uniform in
[0, 1)), so an action without probability mass is never drawn. A float edge case that would land
past the last action or on one without mass falls to the last action that can be taken.

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

import numpy as np


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
    u = rng.random(cdf.shape[0])[:, None] * cdf[:, -1:]
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
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=str(seed).encode("utf-8")).digest()
    return (int.from_bytes(digest, "little") >> 11) * 2.0**-53
