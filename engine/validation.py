"""Checks of scalar and matrix arguments, with one error style for the whole project.

Each validator takes the value and the name of the field it came from, and returns the value
converted (a ``float``, an ``int``, a float64 array...) or raises with a message that names the
field, shows the value and states the whole requirement::

    epsilon == 1.5, must be a number in [0, 1]
    n_draws == 0, must be an int >= 1
    cart[0].price is missing, must be a finite number >= 0

Rules:

* **Every rejection is a ValueError**, a value of the wrong type included (``"1.5"`` where a
  number is due is a bad value, as it would be in the JSON or TOML it usually comes from). So a
  caller catches one exception type, and the engine's :class:`~engine.context.ContextError`,
  a ``ValueError``, keeps its contract. Nothing here raises ``TypeError`` or ``OverflowError``.
* **A number** is an ``int``, a ``float`` or a numpy integer or floating scalar. ``bool``
  (and ``numpy.bool_``) is not a number, nor are subclasses of ``int`` and ``float`` other than
  numpy's, strings, 0-d arrays, ``Fraction`` or ``Decimal``. A number must be finite: nan and
  +-inf are rejected, and so is an int too large for a float (``10**400``).
* **An integer** is an ``int`` or a numpy integer scalar (not ``bool``, not an integral float
  such as ``2.0``); Python ints are unbounded, so give ``high`` when size matters.
* Bounds are closed unless ``low_open`` / ``high_open`` say otherwise.

>>> check_number(2, "alpha", low=0)
2.0
>>> check_number(1.5, "epsilon", low=0, high=1)
Traceback (most recent call last):
...
ValueError: epsilon == 1.5, must be a number in [0, 1]
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np

from engine.validation_arrays import (
    SUM_TOLERANCE,
    as_float_array,
    check_finite_rows,
    check_probability_matrix,
    first_bad_row,
)

__all__ = [
    "MISSING",
    "SUM_TOLERANCE",
    "as_float_array",
    "check_bool",
    "check_choice",
    "check_confidence",
    "check_finite_rows",
    "check_integer",
    "check_non_negative",
    "check_number",
    "check_positive",
    "check_probability",
    "check_probability_matrix",
    "fail",
    "first_bad_row",
    "show",
]

_INF = math.inf
_NUMPY_NUMBERS = (np.integer, np.floating)

T = TypeVar("T")


class _Missing:
    """Sentinel for a field absent from its mapping (``mapping.get(key, MISSING)``)."""

    def __repr__(self) -> str:
        return "MISSING"


#: Pass for a field that is absent: the message says ``"<name> is missing, must be ..."``.
MISSING: Any = _Missing()


# ----------------------------------------------------------------------------------------------
# Messages


def show(value: Any) -> str:
    """``value`` as error messages show it.

    Its repr, cut to a readable length, and its type name unless it is an ``int``, ``str`` or
    ``float``.

    The cost is bounded whatever the value: strings and bytes are cut before their repr,
    containers are shown a few entries and levels deep (``reprlib``), an int too long to print
    is shown by its size, and a value whose ``repr`` fails (or recurses too deep) is shown by its
    type alone. It never raises.

    >>> show("abc"), show(1.5), show(None), show("x" * 50)
    ("'abc'", '1.5', 'None (NoneType)', "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' (50 chars)")
    >>> show(10**5000), show([[[[[[[[1]]]]]]]])
    ('<an int of 5001 digits>', '[[[[[[...]]]]]] (list)')
    """
    try:
        if isinstance(value, str) and len(value) > 40:
            return repr(value[:40] + "...") + f" ({len(value)} chars)"
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, int) and value.bit_length() > 3000:  # too long to print
            return f"<an int of {_digits(value)} digits>"
        text = repr(value) if isinstance(value, (int, str, np.generic)) else _REPR.repr(value)
        if len(text) > 60:
            text = text[:60] + "..."
        return f"{text} ({_type_name(value)})" if not isinstance(value, (int, str)) else text
    except Exception:  # a hostile __repr__ or __len__, RecursionError...
        return f"<unprintable> ({_type_name(value)})"


def _digits(value: int) -> int:
    """Number of decimal digits of a (long) int, without printing it."""
    n = abs(value)
    estimate = int(n.bit_length() * 0.30102999566398120) + 1
    return estimate if n >= 10 ** (estimate - 1) else estimate - 1


def _type_name(value: Any) -> str:
    try:
        return str(type(value).__name__)[:60]
    except Exception:  # a metaclass with a hostile __name__
        return "object"


class _BoundedRepr(reprlib.Repr):
    """``repr`` cut by size and depth at every level; failures of nested values shown by type."""

    def repr_int(self, x: int, level: int) -> str:
        return (
            f"<an int of {_digits(x)} digits>"
            if x.bit_length() > 3000
            else super().repr_int(x, level)
        )

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            return super().repr_instance(x, level)
        except Exception:
            return f"<{_type_name(x)}>"


_REPR = _BoundedRepr()
_REPR.maxlevel = 6
_REPR.maxstring = 44
_REPR.maxother = 60
_REPR.maxlong = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 20
_REPR.maxdict = _REPR.maxarray = 20


def fail(value: Any, name: str, requirement: str) -> ValueError:
    """The error for ``value`` of field ``name`` breaking ``requirement`` (to be raised).

    >>> str(fail(0, "n", "an int >= 1")), str(fail(MISSING, "n", "an int >= 1"))
    ('n == 0, must be an int >= 1', 'n is missing, must be an int >= 1')
    """
    if value is MISSING:
        return ValueError(f"{name} is missing, must be {requirement}")
    return ValueError(f"{name} == {show(value)}, must be {requirement}")


def _bound(value: float) -> str:
    """A bound as messages show it: ``0`` for 0.0, ``0.25``, ``1e+300``."""
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    return str(int(value))


def _range(
    kind: str, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> str:
    """E.g. ``"a finite number >= 0"``, ``"a number in (0, 1]"``, ``"an int in [1, 30]"``."""
    if low is not None and high is not None:
        kind = kind.replace("finite ", "")  # a bounded interval says it
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"{kind} in {left}{_bound(low)}, {_bound(high)}{right}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {_bound(low)}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {_bound(high)}"
    return kind


# ----------------------------------------------------------------------------------------------
# Scalars


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within the bounds.

    >>> check_number(np.float32(0.5), "share", low=0, high=1)
    0.5
    >>> check_number(True, "reward")
    Traceback (most recent call last):
    ...
    ValueError: reward == True, must be a finite number
    """
    cls = type(value)
    if cls is float:
        number = value
    elif cls is int or isinstance(value, _NUMPY_NUMBERS):
        try:
            number = float(value)
        except OverflowError:  # an int beyond the float range
            number = _INF
    else:
        number = math.nan
    if (
        -_INF < number < _INF
        and (low is None or (number > low if low_open else number >= low))
        and (high is None or (number < high if high_open else number <= high))
    ):
        return number
    raise fail(value, name, _range("a finite number", low, high, low_open, high_open))


def check_positive(value: Any, name: str, *, high: float | None = None) -> float:
    """``value`` as a finite float > 0 (and <= ``high`` if given).

    >>> check_positive(0, "baseline_sd")
    Traceback (most recent call last):
    ...
    ValueError: baseline_sd == 0, must be a finite number > 0
    """
    return check_number(value, name, low=0.0, high=high, low_open=True)


def check_non_negative(value: Any, name: str) -> float:
    """``value`` as a finite float >= 0.

    >>> check_non_negative(-0.5, "alpha")
    Traceback (most recent call last):
    ...
    ValueError: alpha == -0.5, must be a finite number >= 0
    """
    return check_number(value, name, low=0.0)


def check_probability(value: Any, name: str, *, positive: bool = False) -> float:
    """``value`` as a float in [0, 1] (in (0, 1] when ``positive``: a propensity).

    >>> check_probability(0, "probability", positive=True)
    Traceback (most recent call last):
    ...
    ValueError: probability == 0, must be a number in (0, 1]
    """
    return check_number(value, name, low=0.0, high=1.0, low_open=positive)


def check_confidence(value: Any, name: str = "confidence") -> float:
    """``value`` as a level strictly between 0 and 1 (a confidence, a significance level, a power).

    >>> check_confidence(0.95)
    0.95
    >>> check_confidence(1, "power")
    Traceback (most recent call last):
    ...
    ValueError: power == 1, must be a number in (0, 1)
    """
    return check_number(value, name, low=0.0, high=1.0, low_open=True, high_open=True)


def check_integer(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (either bound may be left out).

    >>> check_integer(np.int64(3), "n_draws", low=1)
    3
    >>> check_integer(2.0, "bag_size", low=1)
    Traceback (most recent call last):
    ...
    ValueError: bag_size == 2.0, must be an int >= 1
    """
    if (type(value) is int or isinstance(value, np.integer)) and (
        (low is None or value >= low) and (high is None or value <= high)
    ):
        return int(value)
    raise fail(value, name, _range("an int", low, high, False, False))


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a ``bool`` or a ``numpy.bool_`` (as a ``bool``); ints are not bools.

    >>> check_bool(1, "fit_intercept")
    Traceback (most recent call last):
    ...
    ValueError: fit_intercept == 1, must be a bool
    """
    if type(value) is bool or isinstance(value, np.bool_):
        return bool(value)
    raise fail(value, name, "a bool")


def check_choice(value: T, name: str, choices: Iterable[Any]) -> T:
    """``value`` if it is one of ``choices`` (compared with ``==``, as ``in`` does).

    >>> check_choice("greedy", "exploration", ("epsilon", "squarecb"))
    Traceback (most recent call last):
    ...
    ValueError: exploration == 'greedy', must be one of ['epsilon', 'squarecb']
    """
    options = list(choices)
    try:
        if value in options:
            return value
    except (TypeError, ValueError):  # e.g. an array, whose == is element-wise
        pass
    raise fail(value, name, f"one of {options}")


# ----------------------------------------------------------------------------------------------
# Arrays (row-wise messages: "<name> row <i> ..., must be ...")
