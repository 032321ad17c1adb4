"""Read a decision log into pandas, or export it to Parquet.

Readers open the database read-only, so they can run while a service is writing to it
(WAL mode gives them a consistent snapshot).

Parquet files written by :func:`to_parquet` have a fixed Arrow schema (:func:`parquet_schema`),
whatever the rows, so exports of different logs or periods (with or without order ids,
rewards, or rows at all) read as one dataset:

=====================  =========================  ========  ===================================
column                 Arrow type                 nullable  meaning
=====================  =========================  ========  ===================================
``decision_id``        ``string``                 no
``timestamp``          ``double``                 no        decision time (Unix seconds)
``user_hash``          ``string``                 no        salted hash of the user id
``model_version``      ``string``                 no
``action``             ``string``                 no        action taken
``action_index``       ``int64``                  no        its index in ``actions``
``probability``        ``double``                 no        propensity of ``action``
``reward``             ``double``                 yes       null until an outcome is joined
``reward_source``      ``string``                 yes       ``reward``, ``event`` or ``default``
``reward_timestamp``   ``double``                 yes
``order_id``           ``string``                 yes
``actions``            ``list<string>``           no        the action catalogue
``eligible``           ``list<string>``           no        eligible actions
``probabilities``      ``list<double>``           no        policy distribution over ``actions``
``features``           ``map<string, double>``    no        feature name to value
``payload``            ``string``                 no        JSON text
``fallback``           ``bool``                   no
``window_closes``      ``double``                 no        end of the attribution window
``p_<action>``         ``double``                 yes       one per action seen in the file
``f_<feature>``        ``double``                 yes       one per feature seen in the file
=====================  =========================  ========  ===================================

The ``p_``/``f_`` columns depend on the actions and features in each file.
``pd.read_parquet(directory)`` takes the columns of the first file (in name order); to get
every column of every file, read with the union of their schemas, e.g.
``pyarrow.dataset.dataset(directory, schema=pyarrow.unify_schemas([pyarrow.parquet.read_schema(f)
for f in files]))``, where a column missing from a file reads as null.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.validation import check_number

from .schema import DECISION_COLUMNS, decode_names
from .store_api import is_postgres_url

if TYPE_CHECKING:
    import pyarrow as pa

#: Columns every ``read_log`` frame starts with, in order (then ``p_<action>``, ``f_<feature>``).
CORE_COLUMNS = (
    "decision_id",
    "timestamp",
    "user_hash",
    "model_version",
    "action",
    "action_index",
    "probability",
    "reward",
    "reward_source",
    "reward_timestamp",
    "order_id",
    "actions",
    "eligible",
    "probabilities",
    "features",
    "payload",
    "fallback",
    "window_closes",
)


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open an existing log read-only (raises FileNotFoundError if there is none)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"path == {os.fspath(path)!r}: no decision log there")
    uri = "file:" + urllib.parse.quote(str(file.resolve())) + "?mode=ro"
    return sqlite3.connect(uri, uri=True)


def read_log(
    path: str | os.PathLike[str], *, since: float | None = None, until: float | None = None
) -> pd.DataFrame:
    """All decisions (``since <= timestamp < until`` if given) joined with their outcomes.

    ``path`` is a SQLite file or a ``postgresql://`` URL; both give the same frame.

    One row per decision; ``reward`` is NaN until an outcome is joined or defaulted.
    ``actions``/``probabilities``/``eligible`` hold the catalogue, the policy's full
    distribution and the eligible names; ``p_<action>`` repeat the probabilities as columns
    (0 when the action was not in that row's catalogue) and ``f_<name>`` the features
    (NaN when absent from that row).
    """
    where, params = [], []
    if since is not None:
        where.append("d.timestamp >= ?")
        params.append(check_number(since, "since"))
    if until is not None:
        where.append("d.timestamp < ?")
        params.append(check_number(until, "until"))
    columns = ", ".join(f"d.{c.strip()}" for c in DECISION_COLUMNS.split(","))
    sql = (
        f"SELECT {columns}, o.reward, o.source, o.timestamp, o.order_id FROM decisions AS d"
        " LEFT JOIN outcomes AS o ON o.decision_id = d.decision_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY d.timestamp, d.rowid"
    )
    if is_postgres_url(path):
        from .postgres import PostgresStore

        store = PostgresStore(str(path), pool_size=1)
        try:
            rows, vocab = store.read_rows(since, until)
        finally:
            store.close()
        return _frame(rows, vocab)
    conn = connect_readonly(path)
    try:
        rows = conn.execute(sql, params).fetchall()
        # vocabularies are insert-only and committed with (or before) the rows using them:
        # reading them second covers every row read above, even with a writer running
        vocab = {
            vid: decode_names(names)
            for vid, names in conn.execute("SELECT vocab_id, names FROM vocabularies")
        }
    finally:
        conn.close()
    return _frame(rows, vocab)


def _frame(rows: list[tuple], vocab: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    n = len(rows)
    cols = list(zip(*rows, strict=True)) if rows else [()] * 19
    (
        ids,
        ts,
        users,
        versions,
        actions,
        index,
        prob,
        action_sets,
        prob_blobs,
        masks,
        feature_sets,
        feature_blobs,
        payloads,
        fallback,
        closes,
        reward,
        source,
        reward_ts,
        order,
    ) = cols
    probs = _decode(prob_blobs, action_sets, vocab, "<f8")
    masks_ = _decode(masks, action_sets, vocab, "u1")
    feats = _decode(feature_blobs, feature_sets, vocab, "<f4")
    catalogue = [list(vocab[v]) for v in action_sets]
    eligible: list[list[str]] = [[] for _ in range(n)]
    for names, rows_, matrix in masks_:
        for i, flags in zip(rows_, matrix.tolist(), strict=True):
            eligible[i] = [a for a, ok in zip(names, flags, strict=True) if ok]
    frame = {
        "decision_id": list(ids),
        "timestamp": np.asarray(ts, dtype=float),
        "user_hash": list(users),
        "model_version": list(versions),
        "action": list(actions),
        "action_index": np.asarray(index, dtype=np.int64),
        "probability": np.asarray(prob, dtype=float),
        "reward": np.array([np.nan if r is None else r for r in reward], dtype=float),
        "reward_source": list(source),
        "reward_timestamp": np.array([np.nan if t is None else t for t in reward_ts], dtype=float),
        "order_id": list(order),
        "actions": catalogue,
        "eligible": eligible,
        "probabilities": _per_row(probs, n, lambda names, values: values),
        "features": _per_row(feats, n, lambda names, values: dict(zip(names, values, strict=True))),
        "payload": [json.loads(p) for p in payloads],
        "fallback": np.asarray(fallback, dtype=bool),
        "window_closes": np.asarray(closes, dtype=float),
    }
    df = pd.DataFrame(frame, columns=list(CORE_COLUMNS), index=pd.RangeIndex(n))
    wide = {**_wide("p_", probs, n, 0.0, sort=False), **_wide("f_", feats, n, np.nan, sort=True)}
    return pd.concat([df, pd.DataFrame(wide, index=df.index)], axis=1) if wide else df


Group = tuple[tuple[str, ...], np.ndarray, np.ndarray]  # (names, row numbers, rows x names matrix)


def _decode(
    blobs: tuple, set_ids: tuple, vocab: dict[str, tuple[str, ...]], dtype: str
) -> list[Group]:
    """Decode per-row blobs, vectorised per vocabulary (rows sharing a set share a width)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, vid in enumerate(set_ids):
        groups[vid].append(i)
    out = []
    for vid, rows in groups.items():
        names = vocab[vid]
        matrix = np.frombuffer(b"".join(blobs[i] for i in rows), dtype=dtype).reshape(
            len(rows), len(names)
        )
        out.append((names, np.asarray(rows, dtype=np.int64), matrix))
    return out


def _per_row(groups: list[Group], n: int, build) -> list:
    out: list = [None] * n
    for names, rows, matrix in groups:
        for i, values in zip(rows.tolist(), matrix.astype(float).tolist(), strict=True):
            out[i] = build(names, values)
    return out


def _wide(
    prefix: str, groups: list[Group], n: int, fill: float, *, sort: bool
) -> dict[str, np.ndarray]:
    names = list(dict.fromkeys(name for group in groups for name in group[0]))
    columns = {name: np.full(n, fill) for name in (sorted(names) if sort else names)}
    for group_names, rows, matrix in groups:
        for j, name in enumerate(group_names):
            columns[name][rows] = matrix[:, j]
    return {prefix + name: column for name, column in columns.items()}


def parquet_schema(columns: Sequence[str]) -> pa.Schema:
    """Arrow schema of a :func:`to_parquet` file holding ``columns``.

    ``columns`` are a :func:`read_log` frame's: the core columns, then ``p_<action>`` and
    ``f_<feature>``.
    """
    import pyarrow as pa

    core = {
        "decision_id": (pa.string(), False),
        "timestamp": (pa.float64(), False),
        "user_hash": (pa.string(), False),
        "model_version": (pa.string(), False),
        "action": (pa.string(), False),
        "action_index": (pa.int64(), False),
        "probability": (pa.float64(), False),
        "reward": (pa.float64(), True),
        "reward_source": (pa.string(), True),
        "reward_timestamp": (pa.float64(), True),
        "order_id": (pa.string(), True),
        "actions": (pa.list_(pa.string()), False),
        "eligible": (pa.list_(pa.string()), False),
        "probabilities": (pa.list_(pa.float64()), False),
        "features": (pa.map_(pa.string(), pa.float64()), False),
        "payload": (pa.string(), False),
        "fallback": (pa.bool_(), False),
        "window_closes": (pa.float64(), False),
    }
    fields = []
    for name in columns:
        if name in core:
            fields.append(pa.field(name, core[name][0], nullable=core[name][1]))
        elif name.startswith(("p_", "f_")):
            fields.append(pa.field(name, pa.float64()))
        else:
            raise ValueError(f"column {name!r} is not a decision-log column")
    return pa.schema(fields)


def to_parquet(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    since: float | None = None,
    until: float | None = None,
) -> Path:
    """Write :func:`read_log` to a Parquet file with the schema :func:`parquet_schema`.

    The payload is stored as JSON text, the features as a map.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = read_log(path, since=since, until=until)
    df["payload"] = [json.dumps(p, separators=(",", ":")) for p in df["payload"]]
    schema = parquet_schema(list(df.columns))
    if len(df):
        table = pa.Table.from_pandas(
            df, schema=schema, preserve_index=False
        ).replace_schema_metadata(None)
    else:  # an empty frame's columns have no element types to convert from
        table = schema.empty_table()
    target = Path(out)
    pq.write_table(table, target)
    return target
