"""The model registry of a PostgreSQL store: versioned models and the pointer servers follow.

The trainer (:mod:`engine.model_loop.trainer`) publishes each model it trains as a numbered
version (the model file's bytes, their sha256, the parent version and the range of settled
events it was trained on); ``model_current`` names the version serving engines should run, and
``model_history`` keeps every move of that pointer, so :func:`rollback` can undo them one by
one. ``cartwise models`` is the command line over this module.

Every read that returns a model verifies it: the sha256 of the stored bytes must equal the
row's, and the bytes must decode as a model file (which checks its own checksum and schema);
anything else raises :class:`~engine.model_file.ModelFileError`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from engine.decision_log.postgres import CONNECT_TIMEOUT_S, migrate
from engine.model_file import ModelFileError
from engine.persistence import SavedModel, decode_saved_model

__all__ = [
    "ModelInfo",
    "connect",
    "current",
    "insert_model",
    "list_models",
    "load_model",
    "promote",
    "rollback",
    "set_current",
]

_POINTER_LOCK = "cartwise_model_pointer"
_REGISTRY_LOCK = "cartwise_model_registry"
_INFO_COLUMNS = (
    "r.version, r.model_version, r.sha256, r.parent, r.learner, r.learner_class, r.first_event,"
    " r.last_event, r.n_events, r.trainer, r.created_at, octet_length(r.blob),"
    " coalesce(c.version = r.version, false)"
)


@dataclass(frozen=True)
class ModelInfo:
    """One published model (without its bytes)."""

    version: int
    model_version: str
    sha256: str
    parent: int | None
    learner: str
    learner_class: str
    first_event: int | None
    last_event: int | None
    n_events: int
    trainer: str
    created_at: datetime
    size: int
    current: bool


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A connection to the store at ``url`` with its schema migrated to this code's version."""
    conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    try:
        migrate(conn)
        if not autocommit:
            conn.commit()
    except BaseException:
        conn.close()
        raise
    return conn


def insert_model(
    conn: psycopg.Connection[Any],
    blob: bytes,
    *,
    model_version: str,
    parent: int | None,
    learner: str,
    learner_class: str,
    first_event: int | None,
    last_event: int | None,
    n_events: int,
    trainer: str,
) -> int:
    """Insert a model (inside the caller's transaction); return its registry version."""
    conn.execute(  # version numbers come from max + 1: one inserter at a time
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))", (_REGISTRY_LOCK,)
    )
    row = conn.execute(
        "INSERT INTO model_registry (version, model_version, sha256, parent, learner,"
        " learner_class, first_event, last_event, n_events, trainer, blob)"
        " SELECT coalesce(max(version), 0) + 1, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s"
        " FROM model_registry RETURNING version",
        (
            model_version,
            hashlib.sha256(blob).hexdigest(),
            parent,
            learner,
            learner_class,
            first_event,
            last_event,
            n_events,
            trainer,
            blob,
        ),
    ).fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise RuntimeError("model_registry insert returned nothing")
    return int(row[0])


def set_current(conn: psycopg.Connection[Any], version: int, reason: str) -> int | None:
    """Point ``model_current`` at ``version`` inside the caller's transaction.

    Returns the version it pointed at before (None if none).
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))", (_POINTER_LOCK,))
    row = conn.execute(
        "SELECT sha256 FROM model_registry WHERE version = %s", (version,)
    ).fetchone()
    if row is None:
        raise ValueError(f"model version == {version!r}, no such version in the registry")
    before = conn.execute("SELECT version FROM model_current").fetchone()
    previous = None if before is None else int(before[0])
    conn.execute(
        "INSERT INTO model_current (singleton, version, sha256, changed_at) VALUES (true, %s, %s,"
        " now()) ON CONFLICT (singleton) DO UPDATE SET version = excluded.version,"
        " sha256 = excluded.sha256, changed_at = excluded.changed_at",
        (version, row[0]),
    )
    conn.execute(
        "INSERT INTO model_history (version, previous, reason) VALUES (%s, %s, %s)",
        (version, previous, reason),
    )
    return previous


def list_models(url: str) -> list[ModelInfo]:
    """Every published model, oldest first."""
    with connect(url) as conn:
        rows = conn.execute(
            f"SELECT {_INFO_COLUMNS} FROM model_registry AS r LEFT JOIN model_current AS c"
            " ON true ORDER BY r.version"
        ).fetchall()
    return [ModelInfo(*row) for row in rows]


def current(conn: psycopg.Connection[Any]) -> tuple[int, str] | None:
    """(version, sha256) of the current model, or None: the cheap query servers poll."""
    row = conn.execute("SELECT version, sha256 FROM model_current").fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def load_model(
    conn: psycopg.Connection[Any], version: int, sha256: str | None = None
) -> tuple[ModelInfo, SavedModel]:
    """Fetch and verify one version.

    The bytes' sha256 must equal the row's (and ``sha256``, when given), and they must decode
    as a model. Raises :class:`~engine.model_file.ModelFileError` otherwise, ``ValueError`` for
    an unknown version.
    """
    row = conn.execute(
        f"SELECT {_INFO_COLUMNS}, r.blob FROM model_registry AS r LEFT JOIN model_current AS c"
        " ON true WHERE r.version = %s",
        (version,),
    ).fetchone()
    if row is None:
        raise ValueError(f"model version == {version!r}, no such version in the registry")
    info, blob = ModelInfo(*row[:-1]), bytes(row[-1])
    name = f"registry version {version}"
    digest = hashlib.sha256(blob).hexdigest()
    if digest != info.sha256 or (sha256 is not None and digest != sha256):
        raise ModelFileError(
            f"model file {name!r} is corrupted: sha256 {digest[:12]}... does not match the "
            f"registry's {info.sha256[:12]}..."
        )
    saved = decode_saved_model(blob, repr(name))
    if saved.meta["learner_class"] != info.learner_class:
        raise ModelFileError(
            f"model file {name!r} holds a {saved.meta['learner_class']}, the registry says "
            f"{info.learner_class}"
        )
    return info, saved


def promote(url: str, version: int, *, verify: bool = True) -> int | None:
    """Make ``version`` current; return the version current before.

    The model is verified first (it must load), unless ``verify`` is False.
    """
    with connect(url) as conn:
        if verify:
            load_model(conn, version)
        with conn.transaction():
            return set_current(conn, version, "promote")


def rollback(url: str) -> int:
    """Undo the latest pointer move not undone yet (publish or promote).

    Returns the version now current. Repeated rollbacks walk further back. Raises ValueError
    when nothing is left.
    """
    with connect(url) as conn, conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))", (_POINTER_LOCK,)
        )
        row = conn.execute(
            "SELECT seq, previous FROM model_history WHERE reason <> 'rollback' AND NOT undone"
            " ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is None or row[1] is None:
            raise ValueError("rollback: no earlier model version to return to")
        conn.execute("UPDATE model_history SET undone = true WHERE seq = %s", (row[0],))
        set_current(conn, int(row[1]), "rollback")
        return int(row[1])
