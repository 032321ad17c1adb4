"""The decision log as a Parquet data lake: schema, bounded-memory reading, hive-partitioned export.

One Parquet row per decision (layout and column meanings: ``docs/log-layout.md``). The store is
read in chunks of rows (keyset pagination on SQLite's ``rowid``), so exporting a log of any size
holds one chunk at a time. :func:`read_chunks` is the one place that knows how to read a store;
it dispatches on the source (a SQLite path today; a ``postgresql://`` URL is where a PostgreSQL
reader plugs in).

>>> schema = lake_schema(("none", "coupon_5"), ("bias", "x"))
>>> [f"{f.name}:{f.type}" for f in schema][:4]
['decision_id:string', 'timestamp:double', 'day:string', 'user_hash:string']
>>> [str(schema.field(name).type) for name in ("order_id", "p_coupon_5", "f_x")]
['string', 'double', 'float']
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .schema import DECISION_COLUMNS, decode_names

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

logger = logging.getLogger(__name__)

LAKE_FORMAT_VERSION = 1
"""Written to each file's key-value metadata as ``cartwise.log_layout``."""
CHUNK_ROWS = 50_000
"""Decisions read from the store per chunk (bounds the exporter's memory)."""
PARTITIONS = ("day", "none")


def lake_schema(action_names: Sequence[str], feature_names: Sequence[str]) -> pa.Schema:
    """The explicit Arrow schema of a lake file for a catalogue and a feature set.

    Fixed columns first, then ``p_<action>`` (float64) and ``e_<action>`` (bool) per action,
    then ``f_<feature>`` (float32, the precision the store keeps) per feature, sorted.
    """
    import pyarrow as pa

    fixed = [
        ("decision_id", pa.string(), False),
        ("timestamp", pa.float64(), False),
        ("day", pa.string(), False),
        ("user_hash", pa.string(), False),
        ("model_version", pa.string(), False),
        ("action", pa.string(), False),
        ("action_index", pa.int32(), False),
        ("probability", pa.float64(), False),
        ("reward", pa.float64(), True),
        ("reward_source", pa.string(), True),
        ("reward_timestamp", pa.float64(), True),
        ("order_id", pa.string(), True),
        ("fallback", pa.bool_(), False),
        ("window_closes", pa.float64(), False),
        ("actions", pa.list_(pa.string()), False),
        ("payload", pa.string(), False),
    ]
    fields = [pa.field(name, kind, nullable=nullable) for name, kind, nullable in fixed]
    fields += [pa.field(f"p_{a}", pa.float64(), nullable=False) for a in action_names]
    fields += [pa.field(f"e_{a}", pa.bool_(), nullable=False) for a in action_names]
    fields += [pa.field(f"f_{f}", pa.float32(), nullable=True) for f in sorted(feature_names)]
    meta = {b"cartwise.log_layout": str(LAKE_FORMAT_VERSION).encode()}
    return pa.schema(fields, metadata=meta)


def day_of(timestamps: np.ndarray) -> np.ndarray:
    """UTC calendar day ``YYYY-MM-DD`` of unix timestamps (the partition key).

    >>> day_of(np.array([0.0, 86_399.9, 1_767_225_600.0])).tolist()
    ['1970-01-01', '1970-01-01', '2026-01-01']
    """
    days = np.floor(np.asarray(timestamps, dtype=np.float64) / 86_400.0).astype("int64")
    return days.astype("datetime64[D]").astype(str)


# ---------------------------------------------------------------- reading the store
ORDERS = ("rowid", "timestamp")


def read_chunks(
    source: str | os.PathLike[str], *, chunk_rows: int = CHUNK_ROWS, order: str = "rowid"
) -> Iterator[pd.DataFrame]:
    """The store's decisions joined with their outcomes, ``chunk_rows`` at a time.

    Frames have :func:`engine.decision_log.read_log`'s columns. ``order="rowid"`` reads in
    insertion order; ``"timestamp"`` in :func:`read_log`'s order (timestamp, then insertion).
    ``source`` is a SQLite path; other schemes (``postgresql://``) raise ``ValueError`` until a
    reader for them is added here.
    """
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise ValueError(f"chunk_rows == {chunk_rows!r}, must be an integer >= 1")
    if order not in ORDERS:
        raise ValueError(f"order == {order!r}, must be one of {ORDERS}")
    text = os.fspath(source)
    if "://" in text:
        raise ValueError(f"source == {text!r}: only SQLite decision logs can be read so far")
    return _sqlite_chunks(text, chunk_rows, order)


def _sqlite_chunks(path: str, chunk_rows: int, order: str) -> Iterator[pd.DataFrame]:
    from .export import _frame, connect_readonly

    columns = ", ".join(f"d.{c.strip()}" for c in DECISION_COLUMNS.split(","))
    head = (
        f"SELECT d.rowid, d.timestamp, {columns}, o.reward, o.source, o.timestamp, o.order_id"
        " FROM decisions AS d LEFT JOIN outcomes AS o ON o.decision_id = d.decision_id"
    )
    # keyset pagination: each chunk starts after the last key of the previous one
    if order == "rowid":
        sql = head + " WHERE d.rowid > ? ORDER BY d.rowid LIMIT ?"
    else:
        sql = head + (
            " WHERE d.timestamp > ? OR (d.timestamp = ? AND d.rowid > ?)"
            " ORDER BY d.timestamp, d.rowid LIMIT ?"
        )
    conn = connect_readonly(path)
    try:
        last: tuple = (-1,) if order == "rowid" else (-math.inf, -math.inf, -1)
        vocab: dict[str, tuple[str, ...]] = {}
        while True:
            rows = conn.execute(sql, (*last, chunk_rows)).fetchall()
            if not rows:
                return
            last = (rows[-1][0],) if order == "rowid" else (rows[-1][1], rows[-1][1], rows[-1][0])
            rows = [r[2:] for r in rows]
            # vocabularies are insert-only and committed with the rows using them
            needed = {r[7] for r in rows} | {r[10] for r in rows}
            if not needed <= vocab.keys():
                vocab = {
                    vid: decode_names(names)
                    for vid, names in conn.execute("SELECT vocab_id, names FROM vocabularies")
                }
            yield _frame(rows, vocab)
    finally:
        conn.close()


def log_names(path: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Union of every action catalogue and feature set in the store (catalogue order kept)."""
    from .export import connect_readonly

    conn = connect_readonly(path)
    try:
        # vocabularies is WITHOUT ROWID: sets come in vocab_id order, names in catalogue order
        rows = conn.execute("SELECT kind, names FROM vocabularies").fetchall()
    finally:
        conn.close()
    actions: dict[str, None] = {}
    features: dict[str, None] = {}
    for kind, names in rows:
        (actions if kind == "actions" else features).update(dict.fromkeys(decode_names(names)))
    return tuple(actions), tuple(sorted(features))


# ---------------------------------------------------------------- frame -> Arrow
def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A :func:`read_log`-style frame as a table of ``schema`` (:func:`lake_schema`)."""
    import pyarrow as pa

    n = len(frame)
    columns: dict[str, pa.Array] = {}
    for field in schema:
        name = field.name
        values: np.ndarray | list[Any]
        if name == "day":
            values = day_of(frame["timestamp"].to_numpy(dtype=np.float64))
        elif name == "payload":
            values = [json.dumps(p, separators=(",", ":")) for p in frame["payload"]]
        elif name == "actions":
            values = list(frame["actions"])
        elif name.startswith("e_"):
            action = name[2:]
            values = np.fromiter((action in e for e in frame["eligible"]), dtype=bool, count=n)
        elif name in frame.columns:
            col = frame[name]
            if field.type == pa.string():
                values = [
                    None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                    for v in col
                ]
            else:
                values = col.to_numpy()
                if name in ("reward", "reward_timestamp"):
                    columns[name] = pa.array(values, type=field.type, from_pandas=True)
                    continue
        elif name.startswith("p_"):
            values = np.zeros(n)
        elif name.startswith("f_"):
            values = np.full(n, np.nan, dtype=np.float32)
        else:
            raise ValueError(f"frame has no column {name!r} needed by the lake schema")
        if name.startswith("f_"):
            columns[name] = pa.array(
                np.asarray(values, dtype=np.float32), type=field.type, from_pandas=True
            )
        else:
            columns[name] = pa.array(values, type=field.type)
    return pa.table(columns, schema=schema)


# ---------------------------------------------------------------- export
def export_lake(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    partition: str = "day",
    chunk_rows: int = CHUNK_ROWS,
    overwrite: bool = False,
) -> Path:
    """Write the decision log at ``source`` as Parquet files under ``out``.

    ``partition="day"`` writes a hive layout ``out/day=YYYY-MM-DD/part-<chunk>.parquet`` (the
    ``day`` column is then the folder name, not stored in the files); ``"none"`` writes
    ``out/part-<chunk>.parquet`` with ``day`` as a column. Every file has the same explicit schema
    (:func:`lake_schema` of the whole store's catalogue and features), so the folder reads as
    one ``pyarrow.dataset`` / Spark table. Memory is bounded by ``chunk_rows`` decisions.
    ``out`` must not hold Parquet files already unless ``overwrite`` (then it is emptied).
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if partition not in PARTITIONS:
        raise ValueError(f"partition == {partition!r}, must be one of {PARTITIONS}")
    text = os.fspath(source)
    if "://" not in text and not Path(text).is_file():
        raise FileNotFoundError(f"source == {text!r}: no decision log there")
    target = Path(out)
    if target.exists() and any(target.rglob("*.parquet")):
        if not overwrite:
            raise ValueError(
                f"out == {os.fspath(out)!r} already holds Parquet files; pass overwrite=True"
            )
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    actions, features = log_names(text)
    schema = lake_schema(actions, features)
    n_rows = 0
    for k, frame in enumerate(read_chunks(text, chunk_rows=chunk_rows)):
        table = to_arrow(frame, schema)
        n_rows += table.num_rows
        if partition == "none":
            pq.write_table(table, target / f"part-{k:06d}.parquet")
            continue
        days = table["day"]
        table = table.drop_columns(["day"])  # hive layout: the day is the folder name
        for day in pc.unique(days).to_pylist():
            folder = target / f"day={day}"
            folder.mkdir(exist_ok=True)
            pq.write_table(table.filter(pc.equal(days, day)), folder / f"part-{k:06d}.parquet")
    logger.info("exported %d decisions from %s to %s", n_rows, text, target)
    return target
