"""Checks of the learners' own argument kinds: name lists, feature matrices and random seeds.

Scalars are checked by :mod:`engine.validation`; as there, every failure raises ``ValueError``
naming the parameter and the value found.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

__all__ = [
    "as_float_matrix",
    "check_names",
    "check_seed",
    "generator_from_state",
]


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


def as_float_matrix(
    name: str, value: object, n_cols: int, max_abs: float = float("inf")
) -> np.ndarray:
    """``value`` as a finite float64 ``(n, n_cols)`` array whose entries are below ``max_abs``.

    Two whole-array reductions decide (NaN fails both comparisons); the error is worked out only
    when one fails.
    """
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_cols:
        raise ValueError(f"{name}.shape == {arr.shape}, must be (n, {n_cols})")
    if arr.size and not (arr.min() > -max_abs and arr.max() < max_abs):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains non-finite values, all entries must be finite")
        raise ValueError(f"{name} has entries with |x| >= {max_abs:g}, all must be smaller")
    return arr


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def check_seed(name: str, seed: object) -> np.random.Generator:
    """Return a Generator: ``seed`` itself if it is one, else ``default_rng(seed)``.

    >>> bool(check_seed("seed", 3).integers(10) == np.random.default_rng(3).integers(10))
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and int(seed) >= 0:
        return np.random.default_rng(int(seed))  # numpy seeds an int and a numpy int alike
    raise ValueError(f"{name} == {seed!r}, must be None, an int >= 0 or a numpy Generator")


def generator_from_state(state: dict) -> np.random.Generator:
    """Rebuild a Generator from ``generator.bit_generator.state`` (a JSON-able dict)."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in _BIT_GENERATORS:
        raise ValueError(f"bit_generator == {kind!r}, must be one of {list(_BIT_GENERATORS)}")
    bit_generator = getattr(np.random, kind)()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
