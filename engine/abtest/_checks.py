"""Checks of the A/B analysis inputs: data frames, their columns and arms.

Scalars are checked by :mod:`engine.validation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


def plain(value: object) -> object:
    """A numpy scalar as the Python value (for readable error messages)."""
    return value.item() if isinstance(value, np.generic) else value


def as_name_list(value: str | Iterable[str] | None, name: str) -> list[str]:
    """Normalise a column name or a list of names to a list (``None`` -> empty list)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    names = list(value)
    for item in names:
        if not isinstance(item, str):
            raise ValueError(f"{name} contains {item!r}, expected column names (str)")
    if len(set(names)) != len(names):
        raise ValueError(f"{name} == {names!r} contains duplicates")
    return names


def check_frame(df: object) -> pd.DataFrame:
    """Raise unless ``df`` is a non-empty DataFrame."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame, found {type(df).__name__}")
    if len(df) == 0:
        raise ValueError("df has no rows")
    return df


def check_columns(df: pd.DataFrame, roles: dict[str, Sequence[str]]) -> None:
    """Raise ``ValueError`` naming the first column (and its role) missing from ``df``."""
    for role, columns in roles.items():
        for column in columns:
            if column not in df.columns:
                raise ValueError(
                    f"column {column!r} ({role}) not found in df; columns are {list(df.columns)!r}"
                )


def check_no_missing(df: pd.DataFrame, column: str) -> None:
    """Raise if ``column`` holds a missing value (NaN/None)."""
    missing = df[column].isna().to_numpy()
    if missing.any():
        first = plain(df.index[np.flatnonzero(missing)[0]])
        raise ValueError(
            f"column {column!r} has {int(missing.sum())} missing value(s), first at row {first!r}"
        )


def numeric_values(df: pd.DataFrame, column: str) -> np.ndarray:
    """Return ``df[column]`` as finite float64 values, or raise naming the column."""
    series = df[column]
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        raise ValueError(f"column {column!r} must be numeric, found dtype {series.dtype}")
    check_no_missing(df, column)
    values = series.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.flatnonzero(bad)[0]
        raise ValueError(
            f"column {column!r} has {int(bad.sum())} non-finite value(s), "
            f"first {plain(values[first])!r} at row {plain(df.index[first])!r}"
        )
    return values


def treatment_arms(levels: list[object], arm: str, control: object) -> list[object]:
    """Return the treatment arms (sorted, control excluded); raise on a single or unknown arm."""
    levels = sorted(levels, key=str)
    if control not in levels:
        raise ValueError(f"control == {control!r} not found in column {arm!r}; arms are {levels!r}")
    if len(levels) < 2:
        raise ValueError(f"column {arm!r} has a single arm {levels[0]!r}; need at least two")
    return [level for level in levels if level != control]
