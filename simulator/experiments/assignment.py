"""Assignment of shoppers to arms by a salted hash of the user id.

The hash is keyed BLAKE2b with the experiment's salt and a personalisation tag of its own, so an
assignment is a pure function of ``(user_id, salt)``: stable across days, processes and runs,
and unrelated to the decision log's hashed ids even when the same salt string is used there
(the engine hashes without the tag). A new salt gives a new, independent randomisation.

>>> users = ["u1", "u2", "u1"]
>>> first = assign(users, ["control", "B"], salt="exp-7")
>>> bool(first[0] == first[2]), first.tolist() == assign(users, ["control", "B"], "exp-7").tolist()
(True, True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from engine.decision_log.hashing import salt_bytes

__all__ = ["assign", "check_salt", "hash_fraction", "normalise_weights"]

_PERSON = b"cartwise-arms"  # domain separation from engine.decision_log.hashing
_SCALE = float(2**64)


def check_salt(salt: str | bytes) -> bytes:
    """``salt`` as 1..64 bytes (BLAKE2b's key size), or ``ValueError`` (the log's own check)."""
    return salt_bytes(salt)


def hash_fraction(user_ids: Iterable[str], salt: str | bytes) -> np.ndarray:
    """A uniform number in ``[0, 1)`` per user id, fixed by ``(user_id, salt)``.

    >>> u = hash_fraction(["u000001", "u000002"], "s")
    >>> bool(((u >= 0) & (u < 1)).all()), bool(u[0] != u[1])
    (True, True)
    """
    key = check_salt(salt)
    out = []
    for uid in user_ids:
        if not isinstance(uid, str) or not uid:
            raise ValueError(f"user_id == {uid!r}, must be a non-empty str")
        digest = hashlib.blake2b(uid.encode("utf-8"), key=key, digest_size=8, person=_PERSON)
        out.append(int.from_bytes(digest.digest(), "big") / _SCALE)
    return np.asarray(out, dtype=np.float64)


def normalise_weights(
    arms: Sequence[str], weights: Mapping[str, float] | Sequence[float] | None
) -> dict[str, float]:
    """Traffic shares per arm (summing to 1).

    From a mapping, a sequence aligned with ``arms``, or ``None`` (equal shares).

    >>> normalise_weights(["a", "b"], [3, 1])
    {'a': 0.75, 'b': 0.25}
    """
    names = list(arms)
    if len(names) < 2:
        raise ValueError(f"arms == {names!r}, need at least two arms")
    if len(set(names)) != len(names):
        raise ValueError(f"arms == {names!r} contains duplicates")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"arms contains {name!r}, arm names must be non-empty str")
    if weights is None:
        return {name: 1.0 / len(names) for name in names}
    if isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in names]
        missing = [k for k in names if k not in weights]
        if unknown or missing:
            raise ValueError(
                f"weights has keys {list(weights)!r}, must have exactly the arms {names!r}"
            )
        values = [weights[name] for name in names]
    else:
        values = list(weights)
        if len(values) != len(names):
            raise ValueError(
                f"weights has {len(values)} entries, must have one per arm ({len(names)})"
            )
    raw = {}
    for name, value in zip(names, values, strict=True):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.floating, np.integer))
            or not np.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"weights[{name!r}] == {value!r}, must be a positive number")
        raw[name] = float(value)
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


def assign(
    user_ids: Iterable[str],
    arms: Sequence[str],
    salt: str | bytes,
    weights: Mapping[str, float] | Sequence[float] | None = None,
) -> np.ndarray:
    """The arm of each user, by hashing the user id with ``salt``.

    A user gets ``arms[k]`` when the user's hash fraction falls in the k-th slice of ``[0, 1)``
    cut by the cumulative ``weights`` (equal shares by default).

    Returns an object array of arm names aligned with ``user_ids``.

    >>> assign(["u1", "u2", "u3"], ["A", "B"], salt="s", weights=[1.0, 1e-12]).tolist()
    ['A', 'A', 'A']
    """
    shares = normalise_weights(arms, weights)
    names = np.array(list(shares), dtype=object)
    edges = np.cumsum(list(shares.values()))
    edges[-1] = 1.0
    u = hash_fraction(user_ids, salt)
    return names[np.minimum(np.searchsorted(edges, u, side="right"), len(names) - 1)]
