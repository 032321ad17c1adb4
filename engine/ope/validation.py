"""Input validation shared by every entry point of :mod:`engine.ope`.

Each check converts its argument to a numpy array and raises ``ValueError`` naming the
argument, the first offending row and the value found, e.g.
``"target_probs row 17 sums to 0.93, must sum to 1"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUM_TOLERANCE = 1e-6
"""Allowed deviation of a probability row sum from 1."""


@dataclass(frozen=True)
class ValidatedFeedback:
    """Validated logged bandit feedback (all arrays have ``n`` rows)."""

    rewards: np.ndarray  # (n,) float64
    actions: np.ndarray  # (n,) int64 in [0, n_actions)
    logged_probs: np.ndarray  # (n,) float64 in (0, 1]
    target_probs: np.ndarray  # (n, n_actions) float64, rows sum to 1
    estimated_rewards: np.ndarray | None  # (n, n_actions) float64
    contexts: np.ndarray | None  # (n, d) float64

    @property
    def n(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.target_probs.shape[1])


def _first_bad(mask: np.ndarray) -> tuple[int, str]:
    """Index of the first True row of ``mask`` and a note on how many more there are."""
    rows = np.flatnonzero(mask)
    more = f" (and {rows.size - 1} more rows)" if rows.size > 1 else ""
    return int(rows[0]), more


def _as_float(name: str, value: object, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, could not convert: {exc}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} has shape {arr.shape}, must be {ndim}-dimensional")
    return arr


def _row_sums(arr: np.ndarray) -> np.ndarray:
    """Row sums of a 2-D array (a matrix-vector product: much faster than sum(axis=1))."""
    return arr @ np.ones(arr.shape[1])


def _check_finite(name: str, arr: np.ndarray, sums: np.ndarray | None = None) -> None:
    # Fast path: a sum is finite only if every term is (a finite overflow falls through).
    if sums is None:
        sums = _row_sums(arr) if arr.ndim == 2 else arr.sum()
    if np.isfinite(sums).all():
        return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    if bad.any():
        bad_rows = bad if arr.ndim == 1 else bad.any(axis=1)
        row, more = _first_bad(bad_rows)
        value = arr[row] if arr.ndim == 1 else arr[row][~np.isfinite(arr[row])][0]
        raise ValueError(f"{name} row {row} contains {value}, must be finite{more}")


def check_rewards(rewards: object) -> np.ndarray:
    """Return ``rewards`` as a finite 1-D float array with at least one row."""
    arr = _as_float("rewards", rewards, 1)
    if arr.size == 0:
        raise ValueError("rewards is empty, need at least one row")
    _check_finite("rewards", arr)
    return arr


def check_actions(actions: object, n: int, n_actions: int) -> np.ndarray:
    """Return ``actions`` as int64 of length ``n`` with values in ``[0, n_actions)``."""
    raw = np.asarray(actions)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise ValueError(f"actions has shape {raw.shape}, must be ({n},) to match rewards")
    if raw.dtype.kind in "iub":
        arr = raw.astype(np.int64, copy=False)
    else:
        as_float = _as_float("actions", raw, 1)
        _check_finite("actions", as_float)
        frac = as_float != np.round(as_float)
        if frac.any():
            row, more = _first_bad(frac)
            raise ValueError(f"actions row {row} == {as_float[row]}, must be an integer{more}")
        arr = as_float.astype(np.int64)
    out = (arr < 0) | (arr >= n_actions)
    if out.any():
        row, more = _first_bad(out)
        raise ValueError(
            f"actions row {row} == {arr[row]}, must be in [0, {n_actions}) "
            f"(n_actions is taken from target_probs.shape[1]){more}"
        )
    return arr


def check_logged_probs(logged_probs: object, n: int) -> np.ndarray:
    """Return propensities of the logged actions, each in ``(0, 1]``."""
    arr = _as_float("logged_probs", logged_probs, 1)
    if arr.shape[0] != n:
        raise ValueError(f"logged_probs has shape {arr.shape}, must be ({n},) to match rewards")
    _check_finite("logged_probs", arr)
    bad = (arr <= 0.0) | (arr > 1.0)
    if bad.any():
        row, more = _first_bad(bad)
        raise ValueError(f"logged_probs row {row} == {arr[row]}, must be in (0, 1]{more}")
    return arr


def check_probability_matrix(name: str, value: object, n: int) -> np.ndarray:
    """Return an ``(n, n_actions)`` matrix of non-negative rows summing to 1."""
    arr = _as_float(name, value, 2)
    if arr.shape[0] != n or arr.shape[1] == 0:
        raise ValueError(f"{name} has shape {arr.shape}, must be ({n}, n_actions) to match rewards")
    sums = _row_sums(arr)
    _check_finite(name, arr, sums)
    if arr.min() < 0.0:
        row, more = _first_bad((arr < 0.0).any(axis=1))
        value_found = arr[row][arr[row] < 0.0][0]
        raise ValueError(f"{name} row {row} contains {value_found}, must be non-negative{more}")
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        row, more = _first_bad(off)
        raise ValueError(f"{name} row {row} sums to {sums[row]:.6g}, must sum to 1{more}")
    return arr


def check_matrix(name: str, value: object, n: int, n_cols: int | None = None) -> np.ndarray:
    """Return a finite 2-D float matrix with ``n`` rows (and ``n_cols`` columns if given)."""
    arr = _as_float(name, value, 2)
    want_cols = arr.shape[1] if n_cols is None else n_cols
    if arr.shape[0] != n or arr.shape[1] != want_cols:
        expected = f"({n}, {n_cols})" if n_cols is not None else f"({n}, d)"
        raise ValueError(f"{name} has shape {arr.shape}, must be {expected} to match rewards")
    _check_finite(name, arr)
    return arr


def validate(
    rewards: object,
    actions: object,
    logged_probs: object,
    target_probs: object,
    estimated_rewards: object | None = None,
    contexts: object | None = None,
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
    pi = check_probability_matrix("target_probs", target_probs, n)
    a = check_actions(actions, n, pi.shape[1])
    p = check_logged_probs(logged_probs, n)
    q = None if estimated_rewards is None else check_matrix(
        "estimated_rewards", estimated_rewards, n, pi.shape[1]
    )
    x = None if contexts is None else check_matrix("contexts", contexts, n)
    return ValidatedFeedback(r, a, p, pi, q, x)


def check_confidence(confidence: float) -> float:
    """Return ``confidence`` if it lies in (0, 1)."""
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise ValueError(f"confidence == {confidence}, must be in (0, 1)")
    return c


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} == {value!r}, must be a positive integer")
    return int(value)


def make_rng(rng: np.random.Generator | None, seed: int | None) -> np.random.Generator:
    """One generator from either ``rng`` or ``seed`` (not both)."""
    if rng is not None and seed is not None:
        raise ValueError(f"rng and seed == {seed} both given, pass only one")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng == {rng!r}, must be a numpy.random.Generator")
        return rng
    return np.random.default_rng(seed)
