"""A decision's features packed as the log stores them, and the helpers records share.

The engine hands the log its feature vector as :class:`PackedFeatures` (names and a float32
blob, the stores' format) rather than a dict of Python floats, and its payloads are checked to
be JSON-safe without encoding them (:func:`json_safe_payload`); both keep the decide path short.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from engine.validation import check_number

#: Largest magnitude a feature may have (features are stored as float32).
FLOAT32_MAX = 3.4028234663852886e38


def checked_text(name: str, value: Any, max_len: int = 256) -> str:
    """``value`` if a non-empty str of at most ``max_len`` chars; else ValueError naming it."""
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise ValueError(f"{name} == {value!r}, must be a non-empty str of at most {max_len} chars")
    return value


def checked_names(name: str, values: Any) -> tuple[str, ...]:
    """``values`` as a tuple of unique :func:`checked_text` names; else ValueError naming it."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} == {values!r}, must be a sequence of names")
    out = tuple(checked_text(f"{name}[{i}]", v) for i, v in enumerate(values))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} == {list(out)!r}, names must be unique")
    return out


def hashable_values(name: str, values: Any) -> tuple:
    """``values`` as a hashable tuple of names (the key of the validation caches below).

    >>> hashable_values("actions", ["none", "coupon_5"])
    ('none', 'coupon_5')
    """
    if type(values) is tuple:
        try:
            hash(values)
            return values
        except TypeError:
            raise ValueError(f"{name} == {values!r}, must contain only names") from None
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} == {values!r}, must be a sequence of names")
    out = tuple(values)
    try:
        hash(out)
    except TypeError:
        raise ValueError(f"{name} == {values!r}, must contain only names") from None
    return out


# The engine sends the same catalogue, eligibility sets and feature names over and over:
# validate each distinct one once.


# one encoder for every payload: json.dumps with non-default options builds a new one per call
PAYLOAD_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_FLOAT32 = np.dtype("<f4")
_FLOAT32_MAX_SQUARED = FLOAT32_MAX * FLOAT32_MAX
_KNOWN_NAMES: dict[int, tuple[str, ...]] = {}  # id -> feature-name tuples already checked


class PackedFeatures(Mapping[str, float]):
    """A decision's features as the log stores them: names and a little-endian float32 blob.

    What the engine hands the log: packing one array costs far less than a dict of Python
    floats, and the stores write :attr:`blob` as it is. As a mapping it reads like the dict
    it replaces (values rounded to float32, as the store returns them).

    >>> f = PackedFeatures.from_array(("cart_value", "items"), np.array([59.9, 2.0]))
    >>> dict(f) == {"cart_value": float(np.float32(59.9)), "items": 2.0}
    True
    >>> PackedFeatures.from_array(("a",), np.array([np.inf]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: features['a'] == inf, must be a number in [...]
    """

    __slots__ = ("_values", "blob", "names")

    def __init__(self, names: tuple[str, ...], blob: bytes) -> None:
        if len(blob) != 4 * len(names):
            raise ValueError(
                f"features blob of {len(blob)} bytes, must hold {len(names)} float32 values"
            )
        known = _KNOWN_NAMES.get(id(names))  # the engine passes the same tuple every time
        if known is not names:
            known = unique_feature_names(hashable_values("feature names", names))
            if len(_KNOWN_NAMES) >= 1024:
                _KNOWN_NAMES.clear()
            _KNOWN_NAMES[id(names)] = names  # kept alive here, so its id cannot be reused
        self.names = known
        self.blob = blob
        self._values: tuple[float, ...] | None = None

    @classmethod
    def from_array(cls, names: tuple[str, ...], values: np.ndarray) -> PackedFeatures:
        """Pack a 1-D float array; ValueError naming the first value float32 cannot hold."""
        if len(values) != len(names):
            raise ValueError(f"features: {len(values)} values for {len(names)} names")
        # one dot product checks them all: |v| <= FLOAT32_MAX for each v if the sum of squares
        # is at most FLOAT32_MAX**2 (finite in float64); NaN and inf fail it
        if not float(values.dot(values)) <= _FLOAT32_MAX_SQUARED:
            for name, value in zip(names, values.tolist(), strict=True):
                check_number(value, f"features[{name!r}]", low=-FLOAT32_MAX, high=FLOAT32_MAX)
        return cls(names, values.astype(_FLOAT32).tobytes())

    def values_tuple(self) -> tuple[float, ...]:
        """The values as Python floats (decoded once)."""
        if self._values is None:
            self._values = tuple(np.frombuffer(self.blob, dtype=_FLOAT32).tolist())
        return self._values

    def __getitem__(self, name: str) -> float:
        try:
            return self.values_tuple()[self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"PackedFeatures({dict(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PackedFeatures, (self.names, self.blob))


def json_safe_payload(payload: Any) -> bool:
    """Whether ``payload`` is a dict that surely encodes as JSON (without encoding it).

    True for str keys with str, int, finite float or list-of-str/int values (what the engine's
    payloads hold). False means "check by encoding", not "invalid".
    """
    if type(payload) is not dict:
        return False
    for key, value in payload.items():
        kind = type(value)
        if type(key) is not str:
            return False
        if kind is float:
            if value - value != 0.0:  # NaN or an infinity
                return False
        elif kind is list:
            if not all(type(item) is str or type(item) is int for item in value):
                return False
        elif kind is not str and kind is not int:
            return False
    return True


def packed_features(features: Mapping[str, float]) -> tuple[tuple[str, ...], bytes]:
    """(names, float32 blob) of a record's features, as the stores write them."""
    if type(features) is PackedFeatures:
        return features.names, features.blob
    values = np.array(tuple(features.values()), dtype=np.float64)
    return tuple(features), values.astype(_FLOAT32).tobytes()


@lru_cache(maxsize=1024)
def unique_feature_names(names: tuple) -> tuple[str, ...]:
    """``names`` checked once per distinct tuple: non-empty strings, no duplicates."""
    return checked_names("feature names", names)
