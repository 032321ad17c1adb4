"""SQLite schema of the decision log and the compact encodings of its vector columns.

Vectors are stored as little-endian blobs: probabilities as float64 (propensities feed
IPS weights, so they keep full precision), features as float32 (the precision Vowpal
Wabbit learns with), eligibility as one byte per action. The names that give a blob its
meaning (the action catalogue, the feature names) are stored once in ``vocabularies``
under a content hash, so the same set always gets the same id without a lookup.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS vocabularies (
    vocab_id TEXT PRIMARY KEY,
    kind     TEXT NOT NULL CHECK (kind IN ('actions', 'features')),
    names    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS decisions (
    decision_id   TEXT PRIMARY KEY,
    timestamp     REAL NOT NULL,
    user_hash     TEXT NOT NULL,
    model_version TEXT NOT NULL,
    action        TEXT NOT NULL,
    action_index  INTEGER NOT NULL,
    probability   REAL NOT NULL,
    action_set    TEXT NOT NULL,
    probabilities BLOB NOT NULL,
    eligible      BLOB NOT NULL,
    feature_set   TEXT NOT NULL,
    features      BLOB NOT NULL,
    payload       TEXT NOT NULL,
    fallback      INTEGER NOT NULL,
    window_closes REAL NOT NULL,
    resolved      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS decisions_by_user ON decisions (user_hash, timestamp);
CREATE INDEX IF NOT EXISTS decisions_open ON decisions (window_closes) WHERE resolved = 0;

CREATE TABLE IF NOT EXISTS outcomes (
    decision_id TEXT PRIMARY KEY,
    timestamp   REAL NOT NULL,
    reward      REAL NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('reward', 'event', 'default')),
    order_id    TEXT
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS outcome_resolves_decision AFTER INSERT ON outcomes
BEGIN
    UPDATE decisions SET resolved = 1 WHERE decision_id = NEW.decision_id AND resolved = 0;
END;
"""

# Writes use multi-row statements: one statement per chunk of rows means one sqlite3_step,
# so the writer thread gives up the GIL once per chunk rather than once per row (with
# executemany, a busy producer thread makes every row wait up to a GIL switch interval).
# Chunks are padded (by repeating their last row, which INSERT OR IGNORE and IN (...)
# absorb) to one of a few sizes, so only a few prepared statements are ever cached.
CHUNK_SIZES = tuple(2**k for k in range(10))  # 1, 2, 4, ..., 512 rows: padding at most doubles

VOCAB_INSERT = ("INSERT OR IGNORE INTO vocabularies (vocab_id, kind, names) VALUES ", 3)
DECISION_INSERT = (
    "INSERT OR IGNORE INTO decisions (decision_id, timestamp, user_hash, model_version, action,"
    " action_index, probability, action_set, probabilities, eligible, feature_set, features,"
    " payload, fallback, window_closes) VALUES ",
    15,
)
OUTCOME_INSERT = (
    "INSERT OR IGNORE INTO outcomes (decision_id, timestamp, reward, source, order_id) VALUES ",
    5,
)


@lru_cache(maxsize=64)
def values_sql(head: str, width: int, n_rows: int) -> str:
    """``head`` followed by ``n_rows`` groups of ``width`` placeholders.

    >>> values_sql("INSERT INTO t VALUES ", 2, 3)
    'INSERT INTO t VALUES (?,?),(?,?),(?,?)'
    """
    group = "(" + ",".join("?" * width) + ")"
    return head + ",".join([group] * n_rows)


def padded_chunks(rows: Sequence[Any]) -> list[list[Any]]:
    """Split ``rows`` into chunks of at most ``CHUNK_SIZES[-1]``, each padded to a chunk size.

    >>> [len(c) for c in padded_chunks(list(range(1100)))]
    [512, 512, 128]
    >>> padded_chunks([1, 2, 3])
    [[1, 2, 3, 3]]
    """
    top = CHUNK_SIZES[-1]
    out = []
    for start in range(0, len(rows), top):
        chunk = list(rows[start : start + top])
        size = next(s for s in CHUNK_SIZES if s >= len(chunk))
        out.append(chunk + [chunk[-1]] * (size - len(chunk)))
    return out


DECISION_COLUMNS = (
    "decision_id, timestamp, user_hash, model_version, action, action_index, probability,"
    " action_set, probabilities, eligible, feature_set, features, payload, fallback, window_closes"
)


@lru_cache(maxsize=4096)
def vocab_id(kind: str, names: tuple[str, ...]) -> str:
    """Content-addressed id of a list of names (same names in same order -> same id).

    >>> vocab_id("actions", ("none", "coupon_5")) == vocab_id("actions", ("none", "coupon_5"))
    True
    """
    digest = hashlib.blake2b(digest_size=8)
    digest.update(kind.encode())
    for name in names:
        digest.update(b"\x00" + name.encode("utf-8"))
    return digest.hexdigest()


def encode_names(names: Sequence[str]) -> str:
    """A list of names as compact JSON text (how vocabularies are stored)."""
    return json.dumps(list(names), separators=(",", ":"))


def decode_names(text: str) -> tuple[str, ...]:
    """The names stored by :func:`encode_names`.

    >>> decode_names(encode_names(["none", "coupon_5"]))
    ('none', 'coupon_5')
    """
    return tuple(json.loads(text))


@lru_cache(maxsize=64)
def _packer(code: str, n: int) -> struct.Struct:
    return struct.Struct(f"<{n}{code}")


def encode_f64(values: Sequence[float]) -> bytes:
    """Floats as a little-endian float64 blob."""
    return _packer("d", len(values)).pack(*values)


def encode_f32(values: Sequence[float]) -> bytes:
    """Floats as a little-endian float32 blob (rounded to float32)."""
    return _packer("f", len(values)).pack(*values)


@lru_cache(maxsize=4096)
def encode_mask(actions: tuple[str, ...], eligible: tuple[str, ...]) -> bytes:
    """One byte per action, 1 when it is eligible.

    >>> list(encode_mask(("none", "coupon_5", "coupon_10"), ("none", "coupon_10")))
    [1, 0, 1]
    """
    allowed = set(eligible)
    return bytes(1 if name in allowed else 0 for name in actions)


def decode_f64(blob: bytes) -> np.ndarray:
    """The values of an :func:`encode_f64` blob (a read-only view of it)."""
    return np.frombuffer(blob, dtype="<f8")


def decode_f32(blob: bytes) -> np.ndarray:
    """The values of an :func:`encode_f32` blob (a read-only view of it)."""
    return np.frombuffer(blob, dtype="<f4")


def decode_mask(blob: bytes) -> np.ndarray:
    """The eligibility flags of an :func:`encode_mask` blob, as booleans.

    >>> decode_mask(bytes([1, 0])).tolist()
    [True, False]
    """
    return np.frombuffer(blob, dtype=np.uint8).astype(bool)
