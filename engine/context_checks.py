"""The context's error type, its size limits, and the checks of single fields.

Used by :mod:`engine.context` and :mod:`engine.context_history`; the underscore names are
shared by those two modules only. Each field check returns silently on the fast path and, on a
failure, raises a :class:`ContextError` whose message names the field.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.validation import MISSING, check_bool, check_integer, check_number, fail

__all__ = ["ContextError", "ContextLimits", "describe"]

_INF = math.inf
_MAX = sys.float_info.max  # "-_MAX <= x <= _MAX": finite, and an int that fits a float
_NUMBER_TYPES = (float, int)  # bool is excluded by exact type checks below
_MISSING = MISSING  # a field absent from its mapping: "<field> is missing, must be ..."


class ContextError(ValueError):
    """A context record that breaks the schema.

    Its message names the field and shows the value found; :attr:`reason` says the same without
    the value (safe to store: the value may be a user or item id).

    Attributes:
        field: dotted path of the offending field, e.g. ``"cart[2].price"``.
        value: the value found (``None`` when the field is missing).
        found: what was found, without its value: ``"missing"``, ``"int"``, ``"str of 300
            chars"``, ``"float nan"``...
    """

    def __init__(self, field: str, value: Any, message: str, found: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.found = found if found is not None else describe(value)

    def __reduce__(self):  # keep the exception picklable (multiprocessing, logging handlers)
        return (type(self), (self.field, self.value, self.args[0], self.found))

    @property
    def field_path(self) -> str:
        """:attr:`field` without list indices (``"cart[].price"``): a bounded set of keys."""
        return _INDEX.sub("[]", self.field)

    @property
    def reason(self) -> str:
        """The field path, what was found and what is required; never the value itself.

        >>> message = "cart[2].item_id == 42, must be a non-empty string"
        >>> ContextError("cart[2].item_id", 42, message).reason
        'cart[].item_id: int found, must be a non-empty string'
        """
        message = str(self.args[0]) if self.args else ""
        _, sep, requirement = message.rpartition(", must ")
        return f"{self.field_path}: {self.found} found" + (f", must {requirement}" if sep else "")


_INDEX = re.compile(r"\[\d+\]")
_SIZED = (str, bytes, bytearray, list, tuple, dict)


def describe(value: Any) -> str:
    """What a value is, without the value (never the digits of a number: an id may be one).

    Its type, the size of a str/bytes/container, and whether a float is nan or infinite.

    >>> describe("x" * 300), describe(float("nan")), describe(10**400), describe(7)
    ('str of 300 chars', 'float nan', 'int beyond the float range', 'int')
    """
    try:
        if value is _MISSING:
            return "missing"
        cls = type(value)
        name = str(cls.__name__)[:60]
        if cls in _SIZED:
            unit = "chars" if cls is str else "bytes" if cls in (bytes, bytearray) else "entries"
            return f"{name} of {len(value)} {unit}"
        if cls is float and not math.isfinite(value):
            return f"float {value!r}"
        if cls is int and not -_MAX <= value <= _MAX:
            return "int beyond the float range"
        return name
    except Exception:  # a hostile metaclass
        return "object"


@dataclass(frozen=True)
class ContextLimits:
    """Size limits that protect ``decide`` from oversized input.

    Attributes:
        max_string: longest accepted string (ids, categories, device, action names).
        max_cart_lines: most lines in ``cart``.
        max_history_events: most entries in each of ``history.orders`` and ``history.contacts``.
        max_order_items: most item ids in one past order.
        max_count: largest accepted integer count (quantities, views, sessions).
    """

    max_string: int = 256
    max_cart_lines: int = 100
    max_history_events: int = 1_000
    max_order_items: int = 100
    max_count: int = 1_000_000_000

    def __post_init__(self) -> None:
        for name in (
            "max_string",
            "max_cart_lines",
            "max_history_events",
            "max_order_items",
            "max_count",
        ):
            value = check_integer(getattr(self, name), f"ContextLimits.{name}", low=1)
            object.__setattr__(self, name, value)


_DEFAULT_LIMITS = ContextLimits()


# ----------------------------------------------------------------------------------------------
# Failure formatting (slow path only)


def _fail(field: str, value: Any, requirement: str) -> ContextError:
    message = str(fail(value, field, requirement))
    return ContextError(field, None if value is _MISSING else value, message, describe(value))


def _shared(check: Callable[..., Any], field: str, value: Any, **bounds: Any) -> None:
    """Run a shared validator of :mod:`engine.validation`; its error becomes a ContextError."""
    try:
        check(value, field, **bounds)
    except ValueError as err:
        raise ContextError(
            field, None if value is _MISSING else value, str(err), describe(value)
        ) from None


# ----------------------------------------------------------------------------------------------
# Field checks. Each returns silently on the fast path and raises with a formatted message.


def _check_string(field: str, value: Any, max_len: int) -> None:
    if type(value) is str and 0 < len(value) <= max_len:
        return
    if type(value) is str and value:
        raise _fail(field, value, f"a string of at most {max_len} characters")
    raise _fail(field, value, "a non-empty string")


def _check_unicode(field: str, value: str) -> None:
    """A string that encodes as UTF-8 (no lone surrogate): it is hashed and stored."""
    try:
        value.encode("utf-8")
    except UnicodeError:
        raise _fail(field, value, "a string of valid Unicode (no lone surrogates)") from None


def _check_finite(field: str, value: Any) -> None:
    if type(value) in _NUMBER_TYPES and -_MAX <= value <= _MAX:  # as the fast path accepts it
        return
    _shared(check_number, field, value)


def _check_nonneg(field: str, value: Any) -> None:
    if type(value) in _NUMBER_TYPES and 0 <= value <= _MAX:
        return
    _shared(check_number, field, value, low=0)


def _check_int(field: str, value: Any, low: int, high: int | None = None) -> None:
    if type(value) is int and value >= low and (high is None or value <= high):
        return
    _shared(check_integer, field, value, low=low, high=high)


def _check_bool(field: str, value: Any) -> None:
    _shared(check_bool, field, value)


def _check_list(field: str, value: Any, max_len: int, non_empty: bool = False) -> None:
    if type(value) is list or isinstance(value, (list, tuple)):
        if len(value) > max_len:
            raise ContextError(
                field, value, f"{field} has {len(value)} entries, must have at most {max_len}"
            )
        if non_empty and not value:
            raise _fail(field, value, "a non-empty list")
        return
    raise _fail(field, value, "a list")


def _check_mapping(field: str, value: Any) -> None:
    if type(value) is dict or isinstance(value, Mapping):
        return
    raise _fail(field, value, "a dict")
