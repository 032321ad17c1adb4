"""Checks of array arguments: float arrays, finite rows and probability matrices.

Part of the project's one validation module: :mod:`engine.validation` re-exports every name
here, in the same error style (``"target_probs row 1 sums to 0.9, must sum to 1"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "SUM_TOLERANCE",
    "as_float_array",
    "check_finite_rows",
    "check_probability_matrix",
    "first_bad_row",
]

#: Allowed deviation of a probability row sum from 1.
SUM_TOLERANCE = 1e-6


def first_bad_row(mask: npt.ArrayLike) -> tuple[int, str]:
    """Index of the first True entry of ``mask`` and a note on how many more there are."""
    rows = np.flatnonzero(mask)
    more = f" (and {rows.size - 1} more rows)" if rows.size > 1 else ""
    return int(rows[0]), more


def as_float_array(value: Any, name: str, ndim: int) -> np.ndarray:
    """``value`` as a float64 array with ``ndim`` dimensions (not yet checked to be finite).

    >>> as_float_array([[1, 2]], "X", 1)
    Traceback (most recent call last):
    ...
    ValueError: X has shape (1, 2), must be 1-dimensional
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, could not convert: {exc}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} has shape {arr.shape}, must be {ndim}-dimensional")
    return arr


def _row_sums(arr: np.ndarray) -> np.ndarray:
    """Row sums of a 2-D array (a matrix-vector product: much faster than ``sum(axis=1)``)."""
    return arr @ np.ones(arr.shape[1])


def check_finite_rows(arr: np.ndarray, name: str, sums: np.ndarray | None = None) -> None:
    """Raise naming the first row of ``arr`` (1-D or 2-D) that holds nan or +-inf.

    ``sums`` (the row sums, or the total of a 1-D array) makes the common case one check: a sum
    is finite only if every term is.

    >>> check_finite_rows(np.array([[0.5, 0.5], [np.nan, 1.0]]), "target_probs")
    Traceback (most recent call last):
    ...
    ValueError: target_probs row 1 contains nan, must be finite
    """
    if sums is None:
        sums = _row_sums(arr) if arr.ndim == 2 else arr.sum()
    if np.isfinite(sums).all():
        return
    bad = ~np.isfinite(arr)
    if not bad.any():  # the sum overflowed, every entry is finite
        return
    bad_rows = bad if arr.ndim == 1 else bad.any(axis=1)
    row, more = first_bad_row(bad_rows)
    found = arr[row] if arr.ndim == 1 else arr[row][~np.isfinite(arr[row])][0]
    raise ValueError(f"{name} row {row} contains {found}, must be finite{more}")


def check_probability_matrix(
    value: Any,
    name: str,
    *,
    n_rows: int | None = None,
    n_cols: int | None = None,
    eligible: np.ndarray | None = None,
    atol: float = SUM_TOLERANCE,
) -> np.ndarray:
    """``value`` as a float64 matrix whose rows are distributions over its columns.

    Every entry is finite and >= 0, every row sums to 1 within ``atol``, and, if a boolean
    ``eligible`` matrix of the same shape is given, rows put no mass where it is False.

    Args:
        value: the matrix, ``(n_rows, n_cols)``.
        name: its name in messages.
        n_rows: the number of rows it must have (any when None).
        n_cols: the number of columns it must have (any when None; at least one column).
        eligible: optional boolean mask of the allowed entries.
        atol: allowed deviation of a row sum from 1.

    >>> check_probability_matrix([[0.2, 0.8], [0.6, 0.3]], "target_probs")
    Traceback (most recent call last):
    ...
    ValueError: target_probs row 1 sums to 0.9, must sum to 1
    """
    arr = as_float_array(value, name, 2)
    rows, cols = arr.shape
    if (
        (n_rows is not None and rows != n_rows)
        or (n_cols is not None and cols != n_cols)
        or cols == 0
    ):
        want_rows = "n" if n_rows is None else n_rows
        want_cols = "n_actions" if n_cols is None else n_cols
        raise ValueError(f"{name} has shape {arr.shape}, must be ({want_rows}, {want_cols})")
    sums = _row_sums(arr)
    check_finite_rows(arr, name, sums)
    if rows and arr.min() < 0.0:
        row, more = first_bad_row((arr < 0.0).any(axis=1))
        found = arr[row][arr[row] < 0.0][0]
        raise ValueError(f"{name} row {row} contains {found}, must be non-negative{more}")
    if eligible is not None:
        mask = np.asarray(eligible, dtype=bool)
        if mask.shape != arr.shape:
            raise ValueError(f"{name} has shape {arr.shape}, must match eligible {mask.shape}")
        stray = (arr > 0.0) & ~mask
        if stray.any():
            row, more = first_bad_row(stray.any(axis=1))
            col = int(np.flatnonzero(stray[row])[0])
            raise ValueError(
                f"{name} row {row} puts {arr[row, col]} on ineligible column {col}, must be 0{more}"
            )
    off = np.abs(sums - 1.0) > atol
    if off.any():
        row, more = first_bad_row(off)
        raise ValueError(f"{name} row {row} sums to {sums[row]:.6g}, must sum to 1{more}")
    return arr
