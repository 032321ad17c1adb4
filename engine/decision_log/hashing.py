"""Salted (keyed) hashing of user ids: the decision log never stores a raw id."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

#: Salt used when none is configured (fine for development, not for production).
DEV_SALT = "cartwise-development-salt"

#: Length in hex characters of :func:`hash_user_id` digests.
USER_HASH_HEX_CHARS = 32

_MAX_KEY_BYTES = 64  # BLAKE2b key limit


def salt_bytes(salt: str | bytes) -> bytes:
    """Validate a salt and return it as bytes (1..64 bytes, BLAKE2b's key size).

    >>> salt_bytes("pepper")
    b'pepper'
    """
    if isinstance(salt, str):
        raw = salt.encode("utf-8")
    elif isinstance(salt, (bytes, bytearray)):
        raw = bytes(salt)
    else:
        raise ValueError(f"salt == {salt!r} (type {type(salt).__name__}), must be str or bytes")
    if not 1 <= len(raw) <= _MAX_KEY_BYTES:
        raise ValueError(f"salt has {len(raw)} bytes, must have 1..{_MAX_KEY_BYTES}")
    return raw


def hash_user_id(user_id: str, salt: str | bytes) -> str:
    """Return the keyed BLAKE2b-128 hex digest of ``user_id`` under ``salt``.

    The salt acts as a secret key, so the hash cannot be reversed by hashing a list of
    candidate ids without it. Same id and salt give the same hash; another salt gives an
    unrelated one.

    >>> h = hash_user_id("u000042", "s3cret")
    >>> len(h), h == hash_user_id("u000042", "s3cret"), h == hash_user_id("u000042", "other")
    (32, True, False)
    """
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id == {user_id!r}, must be a non-empty str")
    return _digest(user_id, _keyed(salt_bytes(salt)))


def _keyed(key: bytes) -> hashlib.blake2b:
    """A BLAKE2b state with the key already absorbed; copies of it hash ids."""
    return hashlib.blake2b(key=key, digest_size=USER_HASH_HEX_CHARS // 2)


def _digest(user_id: str, keyed: hashlib.blake2b) -> str:
    state = keyed.copy()  # cheaper than keying a new state for every id
    state.update(user_id.encode("utf-8"))
    return state.hexdigest()


def user_hasher(salt: str | bytes) -> Callable[[str], str]:
    """:func:`hash_user_id` with the salt checked once.

    For a caller that hashes many ids it has validated (non-empty str) itself: the engine's
    ``decide``.

    >>> user_hasher("s3cret")("u000042") == hash_user_id("u000042", "s3cret")
    True
    """
    keyed = _keyed(salt_bytes(salt))

    def hash_user(user_id: str) -> str:
        return _digest(user_id, keyed)

    return hash_user


def resolve_salt(salt: str | bytes | None) -> str | bytes:
    """``salt`` if given, else ``$CARTWISE_SALT``, else :data:`DEV_SALT` (the engine's rule).

    >>> resolve_salt("pepper")
    'pepper'
    """
    return salt or os.environ.get("CARTWISE_SALT") or DEV_SALT
