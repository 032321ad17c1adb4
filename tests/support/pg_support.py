"""PostgreSQL for tests: where it is, whether it answers, and throw-away schemas on it."""

from __future__ import annotations

import functools
import os
import uuid
from urllib.parse import quote

PG_URL = os.environ.get("CARTWISE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@functools.lru_cache(maxsize=1)
def unreachable_reason() -> str | None:
    """None when PostgreSQL at :data:`PG_URL` answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means: no usable server
        reason = f"{type(exc).__name__}: {str(exc).strip()[:160]}"
        return f"PostgreSQL at {PG_URL} is unreachable ({reason})"
    return None


def schema_url(schema: str, base: str = PG_URL) -> str:
    """``base`` with ``schema`` first on the search path."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote('-csearch_path=' + schema)}"


def create_schema(prefix: str = "t") -> str:
    import psycopg

    name = f"cw_{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return name


def drop_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
