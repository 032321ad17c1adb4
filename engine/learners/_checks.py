"""Validation helpers shared by the learners (one place for error wording).

Every failure raises ``ValueError`` naming the parameter and the value found, e.g.
``"epsilon == 1.5, must be in [0, 1]"``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

__all__ = [
    "as_float_matrix",
    "check_choice",
    "check_int",
    "check_names",
    "check_real",
    "check_seed",
    "generator_from_state",
]


def check_real(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float inside the given bounds.

    >>> check_real("alpha", 2, 0.0)
    2.0
    >>> check_real("epsilon", 1.5, 0.0, 1.0)
    Traceback (most recent call last):
    ...
    ValueError: epsilon == 1.5, must be in [0.0, 1.0]
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} == {value!r}, must be a real number")
    out = float(value)
    too_low = low is not None and (out <= low if low_open else out < low)
    too_high = high is not None and (out >= high if high_open else out > high)
    if not math.isfinite(out) or too_low or too_high:
        left = "-inf" if low is None else str(float(low))
        right = "inf" if high is None else str(float(high))
        interval = (
            ("(" if low_open or low is None else "[")
            + f"{left}, {right}"
            + (")" if high_open or high is None else "]")
        )
        raise ValueError(f"{name} == {value!r}, must be in {interval}")
    return out


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int inside ``[low, high]``.

    >>> check_int("n_draws", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: n_draws == 0, must be an integer >= 1
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and low is not None and value < low:
        ok = False
    if ok and high is not None and value > high:
        ok = False
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f">= {low}")
        if high is not None:
            bounds.append(f"<= {high}")
        rule = " and ".join(bounds)
        raise ValueError(f"{name} == {value!r}, must be an integer" + (f" {rule}" if rule else ""))
    return int(value)


def check_names(name: str, values: Iterable[str]) -> tuple[str, ...]:
    """Return a tuple of unique, non-empty strings.

    >>> check_names("action_names", ["none", "coupon_5"])
    ('none', 'coupon_5')
    """
    if isinstance(values, str):
        raise ValueError(f"{name} == {values!r}, must be a sequence of strings, not one string")
    out = tuple(values)
    if not out:
        raise ValueError(f"{name} == (), must not be empty")
    for item in out:
        if not isinstance(item, str) or not item:
            raise ValueError(f"{name} contains {item!r}, every entry must be a non-empty string")
    if len(set(out)) != len(out):
        dupes = sorted({item for item in out if out.count(item) > 1})
        raise ValueError(f"{name} has duplicates {dupes}, entries must be unique")
    return out


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``.

    >>> check_choice("exploration", "greedy", ("epsilon", "squarecb"))
    Traceback (most recent call last):
    ...
    ValueError: exploration == 'greedy', must be one of ['epsilon', 'squarecb']
    """
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name} == {value!r}, must be one of {options}")
    return str(value)


def as_float_matrix(name: str, value: object, n_cols: int) -> np.ndarray:
    """Return ``value`` as a finite float64 array of shape ``(n, n_cols)``."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_cols:
        raise ValueError(f"{name}.shape == {arr.shape}, must be (n, {n_cols})")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values, all entries must be finite")
    return arr


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def check_seed(name: str, seed: object) -> np.random.Generator:
    """Return a Generator: ``seed`` itself if it is one, else ``default_rng(seed)``.

    >>> bool(check_seed("seed", 3).integers(10) == np.random.default_rng(3).integers(10))
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (
        isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0
    ):
        return np.random.default_rng(seed)
    raise ValueError(f"{name} == {seed!r}, must be None, an int >= 0 or a numpy Generator")


def generator_from_state(state: dict) -> np.random.Generator:
    """Rebuild a Generator from ``generator.bit_generator.state`` (a JSON-able dict)."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in _BIT_GENERATORS:
        raise ValueError(f"bit_generator == {kind!r}, must be one of {list(_BIT_GENERATORS)}")
    bit_generator = getattr(np.random, kind)()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
