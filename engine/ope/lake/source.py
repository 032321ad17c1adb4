"""Where a lake evaluation reads its rows: a Parquet folder or file, or a decision-log store.

A Parquet folder is read as one ``pyarrow.dataset`` (hive ``day=...`` folders when present). A
store (SQLite path; ``postgresql://`` once :func:`engine.decision_log.lake.read_chunks` reads
it) is read in chunks and converted to the lake layout on the fly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BATCH_ROWS = 65_536
"""Rows per Arrow record batch in the stream backend."""


@dataclass(frozen=True)
class Source:
    """An opened source: its column names and how to read it."""

    location: str
    kind: str  # "parquet" or "store"
    names: tuple[str, ...]
    hive: bool = False

    @property
    def action_names(self) -> tuple[str, ...]:
        """Actions of the source, from its ``p_<action>`` columns."""
        return tuple(c[2:] for c in self.names if c.startswith("p_"))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Features of the source, from its ``f_<feature>`` columns, sorted."""
        return tuple(sorted(c[2:] for c in self.names if c.startswith("f_")))

    def dataset(self):
        """The ``pyarrow.dataset`` of a Parquet source."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        partitioning = (
            ds.partitioning(pa.schema([("day", pa.string())]), flavor="hive") if self.hive else None
        )
        return ds.dataset(self.location, format="parquet", partitioning=partitioning)

    def batches(self, columns: Sequence[str], batch_rows: int = BATCH_ROWS) -> Iterator:
        """Arrow record batches (Parquet) or tables (store chunks) holding ``columns``."""
        if self.kind == "parquet":
            # little read-ahead: memory stays at a few row groups, whatever the dataset's size
            yield from self.dataset().to_batches(
                columns=list(columns),
                batch_size=batch_rows,
                batch_readahead=2,
                fragment_readahead=1,
            )
            return
        from engine.decision_log.lake import lake_schema, read_chunks, to_arrow

        schema = lake_schema(self.action_names, self.feature_names)
        for frame in read_chunks(self.location, chunk_rows=batch_rows):
            yield to_arrow(frame, schema).select(list(columns))

    def table(self, columns: Sequence[str]):
        """The whole source as one Arrow table (the memory backend)."""
        import pyarrow as pa

        if self.kind == "parquet":
            return self.dataset().to_table(columns=list(columns))
        from engine.decision_log import read_log
        from engine.decision_log.lake import lake_schema, to_arrow

        table = to_arrow(
            read_log(self.location), lake_schema(self.action_names, self.feature_names)
        )
        return pa.Table.from_batches(table.select(list(columns)).to_batches())

    def count_files(self) -> int:
        """Parquet files of the source (1 for a decision-log store)."""
        return len(self.dataset().files) if self.kind == "parquet" else 1


def open_source(source: str | os.PathLike[str]) -> Source:
    """Open a Parquet folder/file or a decision-log store and read its column names."""
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            f"source == {source!r}, must be a Parquet folder, a .parquet file, a SQLite "
            "decision log or a database URL"
        )
    text = os.fspath(source)
    path = Path(text)
    if "://" in text:
        raise ValueError(
            f"source == {text!r}: only Parquet and SQLite decision logs can be read so far"
        )
    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
        if not path.exists():
            raise ValueError(f"source == {text!r}: no such file or folder")
        hive = path.is_dir() and any(
            p.is_dir() and p.name.startswith("day=") for p in path.iterdir()
        )
        src = Source(text, "parquet", (), hive)
        try:
            names = tuple(src.dataset().schema.names)
        except Exception as exc:  # pyarrow raises its own error types for unreadable files
            raise ValueError(f"source == {text!r} cannot be read as Parquet: {exc}") from None
        if not names:
            raise ValueError(f"source == {text!r} holds no Parquet file")
        return Source(text, "parquet", names, hive)
    if not path.is_file():
        raise ValueError(f"source == {text!r}: no such file or folder")
    from engine.decision_log.lake import lake_schema, log_names

    actions, features = log_names(text)
    return Source(text, "store", tuple(lake_schema(actions, features).names))
