"""Input validation shared by every entry point of :mod:`engine.ope`.

Each check converts its argument to a numpy array and raises ``ValueError`` naming the
argument, the first offending row and the value found, e.g.
``"target_probs row 17 sums to 0.93, must sum to 1"`` (the probability matrix itself is checked
by :func:`engine.validation.check_probability_matrix`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.validation import (
    as_float_array,
    check_finite_rows,
    check_probability_matrix,
    first_bad_row,
)


@dataclass(frozen=True)
class ValidatedFeedback:
    """Validated logged bandit feedback (all arrays have ``n`` rows)."""

    rewards: np.ndarray  # (n,) float64
    actions: np.ndarray  # (n,) int64 in [0, n_actions)
    logged_probs: np.ndarray  # (n,) float64 in (0, 1]
    target_probs: np.ndarray  # (n, n_actions) float64, rows sum to 1
    estimated_rewards: np.ndarray | None  # (n, n_actions) float64
    contexts: np.ndarray | None  # (n, d) float64
    estimated_variances: np.ndarray | None = None  # (n, n_actions) float64, >= 0

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.rewards.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions."""
        return int(self.target_probs.shape[1])


def check_rewards(rewards: object) -> np.ndarray:
    """Return ``rewards`` as a finite 1-D float array with at least one row."""
    arr = as_float_array(rewards, "rewards", 1)
    if arr.size == 0:
        raise ValueError("rewards is empty, need at least one row")
    check_finite_rows(arr, "rewards")
    return arr


def check_actions(actions: object, n: int, n_actions: int) -> np.ndarray:
    """Return ``actions`` as int64 of length ``n`` with values in ``[0, n_actions)``."""
    raw = np.asarray(actions)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise ValueError(f"actions has shape {raw.shape}, must be ({n},) to match rewards")
    if raw.dtype.kind in "iub":
        arr = raw.astype(np.int64, copy=False)
    else:
        as_float = as_float_array(raw, "actions", 1)
        check_finite_rows(as_float, "actions")
        frac = as_float != np.round(as_float)
        if frac.any():
            row, more = first_bad_row(frac)
            raise ValueError(f"actions row {row} == {as_float[row]}, must be an integer{more}")
        arr = as_float.astype(np.int64)
    out = (arr < 0) | (arr >= n_actions)
    if out.any():
        row, more = first_bad_row(out)
        raise ValueError(
            f"actions row {row} == {arr[row]}, must be in [0, {n_actions}) "
            f"(n_actions is taken from target_probs.shape[1]){more}"
        )
    return arr


def check_logged_probs(logged_probs: object, n: int) -> np.ndarray:
    """Return propensities of the logged actions, each in ``(0, 1]``."""
    arr = as_float_array(logged_probs, "logged_probs", 1)
    if arr.shape[0] != n:
        raise ValueError(f"logged_probs has shape {arr.shape}, must be ({n},) to match rewards")
    check_finite_rows(arr, "logged_probs")
    bad = (arr <= 0.0) | (arr > 1.0)
    if bad.any():
        row, more = first_bad_row(bad)
        raise ValueError(f"logged_probs row {row} == {arr[row]}, must be in (0, 1]{more}")
    return arr


def check_matrix(name: str, value: object, n: int, n_cols: int | None = None) -> np.ndarray:
    """Return a finite 2-D float matrix with ``n`` rows (and ``n_cols`` columns if given)."""
    arr = as_float_array(value, name, 2)
    want_cols = arr.shape[1] if n_cols is None else n_cols
    if arr.shape[0] != n or arr.shape[1] != want_cols:
        expected = f"({n}, {n_cols})" if n_cols is not None else f"({n}, d)"
        raise ValueError(f"{name} has shape {arr.shape}, must be {expected} to match rewards")
    check_finite_rows(arr, name)
    return arr


def validate(
    rewards: object,
    actions: object,
    logged_probs: object,
    target_probs: object,
    estimated_rewards: object | None = None,
    contexts: object | None = None,
    estimated_variances: object | None = None,
) -> ValidatedFeedback:
    """Validate and convert one batch of logged bandit feedback.

    >>> data = validate([1.0, 0.0], [0, 1], [0.5, 0.5], [[0.2, 0.8], [0.6, 0.4]])
    >>> data.n, data.n_actions
    (2, 2)
    >>> validate([1.0], [0], [0.5], [[0.5, 0.4]])
    Traceback (most recent call last):
    ...
    ValueError: target_probs row 0 sums to 0.9, must sum to 1
    """
    r = check_rewards(rewards)
    n = r.shape[0]
    pi = check_probability_matrix(target_probs, "target_probs", n_rows=n)
    a = check_actions(actions, n, pi.shape[1])
    p = check_logged_probs(logged_probs, n)
    q = (
        None
        if estimated_rewards is None
        else check_matrix("estimated_rewards", estimated_rewards, n, pi.shape[1])
    )
    x = None if contexts is None else check_matrix("contexts", contexts, n)
    v = None
    if estimated_variances is not None:
        if q is None:
            raise ValueError("estimated_variances given without estimated_rewards, pass both")
        v = check_matrix("estimated_variances", estimated_variances, n, pi.shape[1])
        negative = v < 0.0
        if negative.any():
            row, more = first_bad_row(negative.any(axis=1))
            raise ValueError(
                f"estimated_variances row {row} == {v[row].tolist()}, must be >= 0{more}"
            )
    return ValidatedFeedback(r, a, p, pi, q, x, v)


def make_rng(rng: np.random.Generator | None, seed: int | None) -> np.random.Generator:
    """One generator from either ``rng`` or ``seed`` (not both)."""
    if rng is not None and seed is not None:
        raise ValueError(f"rng and seed == {seed} both given, pass only one")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng == {rng!r}, must be a numpy.random.Generator")
        return rng
    return np.random.default_rng(seed)
